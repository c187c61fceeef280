// InceptionV3 image encoder, tfjs-models style: `const enc = await load({ runtime: 'onnx' })`.
import { loadOnnxEncoder } from "./onnx-encoder.ts";
import { loadTfjsEncoder } from "./tfjs-encoder.ts";
import {
  ENCODER_PRECISIONS,
  ENCODER_RUNTIMES,
  EXECUTION_PROVIDERS,
  type Encoder,
  type EncoderConfig,
} from "./types.ts";

export type {
  Encoder,
  EncoderConfig,
  EncoderLogger,
  EncoderModelConfig,
  EncoderPrecision,
  EncoderQuality,
  EncoderRuntime,
  ExecutionProvider,
} from "./types.ts";
export { EncoderEnvShape, encoderConfigFromEnv, encoderModelFromEnv } from "./encoder-env.ts";
export {
  ENCODER_PRECISIONS,
  ENCODER_RUNTIMES,
  EXECUTION_PROVIDERS,
  IMAGE_SIZE,
  PIXELS_PER_IMAGE,
  structuredLogger,
} from "./types.ts";
export { GATE_MIN_MEAN, GATE_MIN_P1, int8EncoderId, QualityGateError } from "./int8-model.ts";
export { encoderId, CUT_LAYER, FEATURE_DIM } from "./nsfwjs-inception.ts";
export { AGREEMENT_TOLERANCE, convertNsfwjsInception, defaultCacheDir } from "./onnx-encoder.ts";

function validate(config: EncoderConfig): void {
  if (config === null || typeof config !== "object")
    throw new TypeError(`encoder config must be an object { runtime: ${ENCODER_RUNTIMES.join(" | ")} }`);
  if (!(ENCODER_RUNTIMES as readonly unknown[]).includes(config.runtime)) {
    throw new Error(
      `encoder runtime '${String(config.runtime)}' is not one of: ${ENCODER_RUNTIMES.join(", ")}`,
    );
  }
  if (config.threads !== undefined && !(Number.isInteger(config.threads) && config.threads >= 1)) {
    throw new Error(
      `encoder threads must be a positive integer (or unset for the number of cores), got ${String(config.threads)}`,
    );
  }
  if (config.executionProviders !== undefined) {
    if (!Array.isArray(config.executionProviders) || config.executionProviders.length === 0) {
      throw new Error(
        `encoder executionProviders must be a non-empty array of: ${EXECUTION_PROVIDERS.join(", ")}`,
      );
    }
    for (const ep of config.executionProviders) {
      if (!(EXECUTION_PROVIDERS as readonly string[]).includes(ep)) {
        throw new Error(
          `encoder execution provider '${String(ep)}' is not one of: ${EXECUTION_PROVIDERS.join(", ")}`,
        );
      }
    }
    if (config.runtime !== "onnx") throw new Error("encoder executionProviders apply only to runtime 'onnx'");
  }
  if (config.model !== undefined) validateModel(config);
  if (config.precision !== undefined) {
    if (!(ENCODER_PRECISIONS as readonly unknown[]).includes(config.precision))
      throw new Error(
        `encoder precision '${String(config.precision)}' is not one of: ${ENCODER_PRECISIONS.join(", ")}`,
      );
    if (config.precision !== "fp32" && (config.runtime !== "onnx" || config.model !== undefined))
      throw new Error(
        `encoder precision '${config.precision}' needs runtime 'onnx' and the default model (a custom model runs fp32)`,
      );
  }
  if (
    config.int8GateImages !== undefined &&
    !(Number.isInteger(config.int8GateImages) && config.int8GateImages >= 1)
  )
    throw new Error(
      `encoder int8GateImages must be a positive integer, got ${String(config.int8GateImages)}`,
    );
  if (config.cacheDir !== undefined && (typeof config.cacheDir !== "string" || config.cacheDir === "")) {
    throw new Error("encoder cacheDir must be a non-empty path");
  }
}

function validateModel(config: EncoderConfig): void {
  const m = config.model;
  if (m === null || typeof m !== "object")
    throw new TypeError("encoder model must be an object { source, layer?, name?, inputSize? }");
  if (typeof m.source !== "string" || m.source.trim() === "")
    throw new Error(
      "encoder model source must be a path, an http(s) URL or store:<key> of a tfjs model.json",
    );
  if (m.source.startsWith("store:") && !config.store)
    throw new Error(`encoder model source '${m.source}' needs an object store (config.store)`);
  if (m.layer !== undefined && (typeof m.layer !== "string" || m.layer === ""))
    throw new Error("encoder model layer must be a non-empty layer (or output node) name");
  if (m.name !== undefined && !(typeof m.name === "string" && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m.name)))
    throw new Error(`encoder model name '${String(m.name)}' may hold only letters, digits, '.', '_' and '-'`);
  if (m.inputSize !== undefined && !(Number.isInteger(m.inputSize) && m.inputSize >= 1))
    throw new Error(`encoder model inputSize must be a positive integer, got ${String(m.inputSize)}`);
}

/** Loads and warms up an encoder. Throws on a bad config, listing the valid choices. */
export async function load(config: EncoderConfig): Promise<Encoder> {
  validate(config);
  return config.runtime === "onnx" ? loadOnnxEncoder(config) : loadTfjsEncoder(config);
}
