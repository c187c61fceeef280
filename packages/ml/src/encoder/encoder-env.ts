// The encoder variables shared by the roles that load an encoder (feature and caption workers):
// `CommonEnv.extend({ ...EncoderEnvShape, ... })`, then `encoderModelFromEnv(env)` for `load()`.
import { z } from "zod";
import { ConfigError } from "@capflow/common";
import type { EncoderModelConfig } from "./types.ts";

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((s) => (s === "" ? undefined : s));

export const EncoderEnvShape = {
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
