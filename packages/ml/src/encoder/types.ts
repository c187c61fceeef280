import type { ObjectStore } from "@capflow/common";
import { xorshift } from "./xorshift.ts";

export type EncoderRuntime = "onnx" | "tfjs";
export const ENCODER_RUNTIMES: readonly EncoderRuntime[] = ["onnx", "tfjs"];
export const EXECUTION_PROVIDERS = ["cpu", "cuda", "tensorrt"] as const;
/**
 * Numeric precision of the default encoder on ONNX Runtime. int8 is a different encoder (its own
 * id): static int8 quantisation, ~2× the images per CPU second (docs/benchmarks.md). No bf16: ONNX
 * Runtime's CPU provider has no bf16 convolution, measured in the same place.
 */
export const ENCODER_PRECISIONS = ["fp32", "int8"] as const;
export type EncoderPrecision = (typeof ENCODER_PRECISIONS)[number];

/** How closely a quantised encoder's features follow the fp32 encoder's: cosine over held-out images. */
export interface EncoderQuality {
  /** The fp32 encoder id compared against. */
  against: string;
  n: number;
  mean: number;
  /** 1st percentile. */
  p1: number;
  min: number;
}
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface EncoderLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** A user-supplied tfjs model (layers model or graph model) instead of the default nsfwjs InceptionV3. */
export interface EncoderModelConfig {
  /**
   * Where its `model.json` is: a local path (a folder means `<folder>/model.json`), an http(s) URL, or
   * `store:<key>` for an object in `EncoderConfig.store`. Weight shards are read relative to it.
   */
  source: string;
  /** Layers model: the layer to cut at (default: the model's output). Graph model: the output node. */
  layer?: string;
  /** First part of the encoder id (default: the model's folder or file name). [A-Za-z0-9._-] only. */
  name?: string;
  /** Model input H=W; default the model's static input size, else 299. Batches (299²) are resized to it. */
  inputSize?: number;
}

export interface EncoderConfig {
  runtime: EncoderRuntime;
  /** 'int8' (runtime onnx, default model only) loads the quantised encoder; default 'fp32'. */
  precision?: EncoderPrecision;
  /** Held-out images for the int8 quality gate when the int8 model is first built (default 500). */
  int8GateImages?: number;
  /** A custom tfjs model; unset = the default nsfwjs InceptionV3 cut at flatten_1. */
  model?: EncoderModelConfig;
  /** Needed when `model.source` is `store:<key>`. */
  store?: ObjectStore;
  /** ORT intra-op threads; default: number of cores. Ignored by tfjs (wasm runs 1 thread under Node). */
  threads?: number;
  /** Where the converted .onnx is cached, keyed by encoder id. Default $CAPFLOW_ENCODER_CACHE or ~/.cache/capflow/encoders. */
  cacheDir?: string;
  /** ORT execution providers in order of preference; default ['cpu']. 'cuda'/'tensorrt' fall back to cpu with a warning. */
  executionProviders?: string[];
  /** Defaults to JSON lines on stderr. */
  logger?: EncoderLogger;
}

export interface Encoder {
  /** Encoder identity: name + weights hash, e.g. inceptionv3-nsfwjs-8a457f3fdec7. */
  readonly id: string;
  /** Feature length: 2048 for the default encoder, the cut layer's (flattened) size for a custom one. */
  readonly dim: number;
  readonly runtime: EncoderRuntime;
  /** What actually runs, e.g. 'onnxruntime-node:cpu' or 'tfjs:wasm'. */
  readonly backend: string;
  /** Absent means fp32. */
  readonly precision?: EncoderPrecision;
  /** A quantised encoder's agreement with its fp32 original, measured when it was built. */
  readonly quality?: EncoderQuality;
  /** `batch` is n×299×299×3 preprocessed NHWC (see ../preprocess/decode-image.ts); returns n×dim. */
  encode(batch: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export const IMAGE_SIZE = 299;
export const PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE * 3;

export function checkBatch(batch: Float32Array, n: number): void {
  if (!(batch instanceof Float32Array)) throw new TypeError("encode: batch must be a Float32Array");
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`encode: n must be a positive integer, got ${n}`);
  if (batch.length !== n * PIXELS_PER_IMAGE)
    throw new RangeError(
      `encode: batch has ${batch.length} floats, expected ${n}×299×299×3 = ${n * PIXELS_PER_IMAGE}`,
    );
}

/** A process's structured logger (pino's `log.info(fields, msg)` order) as the encoder's and decoder's logger. */
export function structuredLogger(log: {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}): EncoderLogger {
  return { info: (msg, f) => log.info(f ?? {}, msg), warn: (msg, f) => log.warn(f ?? {}, msg) };
}

export const consoleLogger: EncoderLogger = {
  info: (msg, fields) =>
    process.stderr.write(JSON.stringify({ level: "info", component: "encoder", msg, ...fields }) + "\n"),
  warn: (msg, fields) =>
    process.stderr.write(JSON.stringify({ level: "warn", component: "encoder", msg, ...fields }) + "\n"),
};

/** Deterministic probe input in [-1, 1] (xorshift), NHWC. */
export function probeInput(n: number, seed = 12345): Float32Array {
  const out = new Float32Array(n * PIXELS_PER_IMAGE);
  const next = xorshift(seed);
  for (let i = 0; i < out.length; i++) out[i] = next() * 2 - 1;
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates as NaN
  }
  return m;
}
