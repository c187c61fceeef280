// The encoder variables shared by the roles that load an encoder (feature and caption workers):
// `CommonEnv.extend({ ...EncoderEnvShape, ... })`, then `encoderModelFromEnv(env)` for `load()`.
import os from "node:os";
import { z } from "zod";
import { ConfigError, envInt, type Logger, type ObjectStore } from "@capflow/common";
import {
  ENCODER_PRECISIONS,
  structuredLogger,
  type EncoderConfig,
  type EncoderModelConfig,
} from "./types.ts";

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((s) => (s === "" ? undefined : s));

export const EncoderEnvShape = {
  CAPFLOW_FEATURE_RUNTIME: z.enum(["onnx", "tfjs"]).default("onnx"),
  /** ONNX Runtime intra-op threads of the encoder. */
  CAPFLOW_FEATURE_THREADS: envInt(1, 256).default(Math.max(1, os.availableParallelism())),
  /** Where converted encoders are cached (default ~/.cache/capflow/encoders). */
  CAPFLOW_ENCODER_CACHE: z.string().optional(),
  /** tfjs model.json to encode with: a path, an http(s) URL or store:<key>. Unset = nsfwjs InceptionV3. */
  CAPFLOW_ENCODER_MODEL: optionalString,
  /** Layer to cut at (layers model) or output node (graph model); default the model's output. */
  CAPFLOW_ENCODER_LAYER: optionalString,
  /** First part of the encoder id; default the model's folder or file name. */
  CAPFLOW_ENCODER_NAME: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only")
      .optional(),
  ),
  /**
   * fp32 | int8. int8 is its own encoder id (features never mix with fp32's), built from the fp32
   * conversion on first use and cached next to it (docs/benchmarks.md: ~2× the images per CPU second).
   */
  CAPFLOW_ENCODER_PRECISION: z.enum(ENCODER_PRECISIONS).default("fp32"),
  /** Held-out images the int8 quality gate compares when the int8 model is built (default 500). */
  CAPFLOW_INT8_GATE_IMAGES: z.coerce.number().int().min(1).optional(),
};
export const EncoderEnv = z.object(EncoderEnvShape);
export type EncoderEnv = z.infer<typeof EncoderEnv>;

/** `EncoderConfig.model` from the environment; throws when a layer or name is set without a model. */
export function encoderModelFromEnv(env: EncoderEnv): EncoderModelConfig | undefined {
  if (env.CAPFLOW_ENCODER_MODEL === undefined) {
    for (const v of ["CAPFLOW_ENCODER_LAYER", "CAPFLOW_ENCODER_NAME"] as const)
      if (env[v] !== undefined) throw new ConfigError(`${v} is set but CAPFLOW_ENCODER_MODEL is not`);
    return undefined;
  }
  return {
    source: env.CAPFLOW_ENCODER_MODEL,
    layer: env.CAPFLOW_ENCODER_LAYER,
    name: env.CAPFLOW_ENCODER_NAME,
  };
}

/**
 * What a worker loads its encoder with, from the environment, its store (for `store:` models) and its
 * logger; the feature worker adds its execution providers.
 */
export function encoderConfigFromEnv(
  env: EncoderEnv,
  deps: { store: ObjectStore; log: Logger },
): EncoderConfig {
  const { log } = deps;
  return {
    runtime: env.CAPFLOW_FEATURE_RUNTIME,
    threads: env.CAPFLOW_FEATURE_THREADS,
    cacheDir: env.CAPFLOW_ENCODER_CACHE,
    model: encoderModelFromEnv(env),
    precision: env.CAPFLOW_ENCODER_PRECISION,
    int8GateImages: env.CAPFLOW_INT8_GATE_IMAGES,
    store: deps.store,
    logger: structuredLogger(log),
  };
}
