import type { ObjectStore } from "@capflow/common";

export type EncoderRuntime = "onnx" | "tfjs";
export const ENCODER_RUNTIMES: readonly EncoderRuntime[] = ["onnx", "tfjs"];
export const EXECUTION_PROVIDERS = ["cpu", "cuda", "tensorrt"] as const;
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

export const consoleLogger: EncoderLogger = {
  info: (msg, fields) =>
    process.stderr.write(JSON.stringify({ level: "info", component: "encoder", msg, ...fields }) + "\n"),
  warn: (msg, fields) =>
    process.stderr.write(JSON.stringify({ level: "warn", component: "encoder", msg, ...fields }) + "\n"),
};

/** Deterministic probe input in [-1, 1] (xorshift), NHWC. */
export function probeInput(n: number, seed = 12345): Float32Array {
  const out = new Float32Array(n * PIXELS_PER_IMAGE);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 0xffffffff) * 2 - 1;
  }
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
