import { access, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism, homedir } from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import { customKerasLayers, namedWeights, readCustomModel } from "./custom-model.ts";
import { CUT_LAYER, dequantisedWeights, kerasLayers, readNsfwjsInception } from "./nsfwjs-inception.ts";
import { kerasToOnnx } from "./onnx-export.ts";
import { loadCustomTfjsEncoder, loadTfjsEncoder } from "./tfjs-encoder.ts";
import {
  checkBatch,
  consoleLogger,
  IMAGE_SIZE,
  maxAbsDiff,
  probeInput,
  type Encoder,
  type EncoderConfig,
  type EncoderLogger,
} from "./types.ts";

/** Largest accepted |ONNX − tfjs| on the probe input when a conversion is made. */
export const AGREEMENT_TOLERANCE = 1e-3;
const INPUT = "input";
const OUTPUT = "features";

export function defaultCacheDir(): string {
  return process.env.CAPFLOW_ENCODER_CACHE ?? path.join(homedir(), ".cache", "capflow", "encoders");
}

/** Converts the nsfwjs InceptionV3 (cut at flatten_1) to ONNX bytes. */
export function convertNsfwjsInception(): { bytes: Uint8Array; id: string; nodeCount: number } {
  const a = readNsfwjsInception();
  const r = kerasToOnnx(kerasLayers(a), dequantisedWeights(a), {
    cutLayer: CUT_LAYER,
    inputName: INPUT,
    outputName: OUTPUT,
    graphName: a.encoderId,
    metadata: {
      encoder_id: a.encoderId,
      weights_sha256: a.weightsSha256,
      source: "nsfwjs@4.4.0 inception_v3",
    },
  });
  return { bytes: r.bytes, id: a.encoderId, nodeCount: r.nodeCount };
}

/**
 * An ORT session with capflow's options; requested providers that fail to load fall back to cpu.
 * `spinning: false` stops idle intra-op threads from spin-waiting for the next run.
 */
export async function createSession(
  model: string | Uint8Array,
  threads: number,
  providers: string[],
  log: EncoderLogger,
  { spinning = true }: { spinning?: boolean } = {},
): Promise<{ session: ort.InferenceSession; providers: string[] }> {
  const opts = (eps: string[]): ort.InferenceSession.SessionOptions => ({
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: eps,
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
  });
  const create = (eps: string[]): Promise<ort.InferenceSession> =>
    typeof model === "string"
      ? ort.InferenceSession.create(model, opts(eps))
      : ort.InferenceSession.create(model, opts(eps));
  try {
    return { session: await create(providers), providers };
  } catch (err) {
    if (providers.length === 1 && providers[0] === "cpu") throw err;
    log.warn("onnxruntime execution providers failed to load; falling back to cpu", {
      requested: providers,
      error: String(err),
    });
    return { session: await create(["cpu"]), providers: ["cpu"] };
  }
}

async function run(
  session: ort.InferenceSession,
  batch: Float32Array,
  n: number,
  dim: number | null = 2048, // null: any length (read the feature length)
): Promise<Float32Array> {
  const input = new ort.Tensor("float32", batch, [n, IMAGE_SIZE, IMAGE_SIZE, 3]);
  const out = await session.run({ [INPUT]: input });
  const t = out[OUTPUT];
  if (!t) throw new Error(`onnx output ${OUTPUT} missing`);
  try {
    const data = t.data;
    if (!(data instanceof Float32Array) || (dim !== null && data.length !== n * dim))
      throw new Error(`onnx output has ${String(t.dims)} ${t.type}`);
    return data.slice(); // own the memory
  } finally {
    t.dispose();
    input.dispose();
  }
}

/** Converts, checks ONNX against tfjs on a probe input, and writes the file atomically. */
async function convertAndCache(file: string, threads: number, log: EncoderLogger): Promise<void> {
  const t0 = performance.now();
  const { bytes, id, nodeCount } = convertNsfwjsInception();
  const probeN = 2;
  const probe = probeInput(probeN);
  const { session } = await createSession(bytes, threads, ["cpu"], log);
  let onnxOut: Float32Array;
  try {
    onnxOut = await run(session, probe, probeN);
  } finally {
    await session.release();
  }
  const tfjs = await loadTfjsEncoder({ runtime: "tfjs" });
  let tfOut: Float32Array;
  try {
    tfOut = await tfjs.encode(probe, probeN);
  } finally {
    await tfjs.dispose();
  }
  const diff = maxAbsDiff(onnxOut, tfOut);
  log.info("onnx conversion checked against tfjs", {
    encoder: id,
    nodes: nodeCount,
    bytes: bytes.length,
    maxAbsDiff: diff,
    backend: tfjs.backend,
  });
  if (!(diff <= AGREEMENT_TOLERANCE)) {
    throw new Error(
      `ONNX conversion of ${id} disagrees with tfjs: max abs diff ${diff} > ${AGREEMENT_TOLERANCE}`,
    );
  }
  await writeAtomic(file, bytes);
  log.info("onnx model cached", { file, ms: Math.round(performance.now() - t0) });
}

/** InceptionV3 (nsfwjs weights) converted to ONNX and run on onnxruntime-node. */
export async function loadOnnxEncoder(config: EncoderConfig): Promise<Encoder> {
  if (config.model) return loadCustomOnnxEncoder(config);
  const log = config.logger ?? consoleLogger;
  const threads = config.threads ?? availableParallelism();
  const requested = config.executionProviders ?? ["cpu"];
  const id = readNsfwjsInception().encoderId;
  const file = path.join(config.cacheDir ?? defaultCacheDir(), `${id}.onnx`);
  let created = await openCached(file, threads, requested, log);
  if (!created) {
    await convertAndCache(file, threads, log);
    created = await createSession(file, threads, requested, log);
  }
  const { session, providers } = created;
  let disposed = false;
  const enc: Encoder = {
    id,
    dim: 2048,
    runtime: "onnx",
    backend: `onnxruntime-node:${providers.join(",")}`,
    encode: async (batch, n) => {
      if (disposed) throw new Error("encoder disposed");
      checkBatch(batch, n);
      return run(session, batch, n);
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
  // Warm-up: the first runs allocate and pick kernels.
  await enc.encode(new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1);
  await enc.encode(new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1);
  log.info("encoder loaded", { encoder: id, runtime: "onnx", backend: enc.backend, threads, file });
  return enc;
}

/** Writes bytes to `file` atomically (temp file + rename). */
async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * A custom tfjs layers model converted to ONNX (cached by encoder id, which covers weights + cut
 * layer). Graph models, models the converter cannot express, non-299 inputs, and conversions that
 * disagree with tfjs run on tfjs instead, with a warning that names the reason.
 */
async function loadCustomOnnxEncoder(config: EncoderConfig): Promise<Encoder> {
  const spec = config.model!;
  const log = config.logger ?? consoleLogger;
  const threads = config.threads ?? availableParallelism();
  const requested = config.executionProviders ?? ["cpu"];
  const files = await readCustomModel(spec, config.store);
  const id = files.id;
  const fallback = (reason: string, extra: Record<string, unknown> = {}): void =>
    log.warn("custom encoder model not run on onnxruntime; falling back to the tfjs runtime", {
      encoder: id,
      source: files.location,
      reason,
      ...extra,
    });
  if (files.format === "graph-model") {
    fallback("graph models run on the tfjs runtime only (the ONNX converter reads Keras layers models)");
    return loadCustomTfjsEncoder(config, files);
  }
  const file = path.join(config.cacheDir ?? defaultCacheDir(), `${id}.onnx`);
  let created = await openCached(file, threads, requested, log);
  if (!created) {
    const tfjs = await loadCustomTfjsEncoder(config, files);
    let keepTfjs = true;
    try {
      const [h, w] = tfjs.loaded.inputHW;
      const layersModel = tfjs.loaded.layers;
      if (!layersModel) throw new Error("not a layers model");
      if (h !== IMAGE_SIZE || w !== IMAGE_SIZE) {
        fallback(
          `model input is ${h}x${w}; the ONNX graph takes ${IMAGE_SIZE}x${IMAGE_SIZE} only (tfjs resizes)`,
        );
        return tfjs;
      }
      const t0 = performance.now();
      let bytes: Uint8Array;
      let nodeCount: number;
      try {
        const r = kerasToOnnx(customKerasLayers(files), namedWeights(layersModel.full), {
          cutLayer: layersModel.cutLayer,
          inputName: INPUT,
          outputName: OUTPUT,
          graphName: id,
          flattenOutput: true,
          metadata: { encoder_id: id, weights_sha256: files.weightsSha256, source: files.location },
        });
        if (r.outputShape.length !== 1 || r.outputShape[0] !== tfjs.dim)
          throw new Error(`converted output shape [${r.outputShape.join(",")}] != tfjs dim ${tfjs.dim}`);
        bytes = r.bytes;
        nodeCount = r.nodeCount;
      } catch (err) {
        fallback(`ONNX conversion failed: ${(err as Error).message}`);
        return tfjs;
      }
      const probeN = 2;
      const probe = probeInput(probeN);
      let diff: number;
      let scale = 1;
      try {
        const { session } = await createSession(bytes, threads, ["cpu"], log);
        let onnxOut: Float32Array;
        try {
          onnxOut = await run(session, probe, probeN, tfjs.dim);
        } finally {
          await session.release();
        }
        const tfOut = await tfjs.encode(probe, probeN);
        diff = maxAbsDiff(onnxOut, tfOut);
        for (const v of tfOut) scale = Math.max(scale, Math.abs(v));
      } catch (err) {
        fallback(`ONNX model failed to run: ${(err as Error).message}`);
        return tfjs;
      }
      // Absolute for features of order 1, relative beyond (a custom cut can have large activations).
      const tolerance = AGREEMENT_TOLERANCE * scale;
      log.info("onnx conversion checked against tfjs", {
        encoder: id,
        nodes: nodeCount,
        bytes: bytes.length,
        maxAbsDiff: diff,
        tolerance,
        backend: tfjs.backend,
      });
      if (!(diff <= tolerance)) {
        fallback(`ONNX conversion disagrees with tfjs: max abs diff ${diff} > ${tolerance}`, {
          maxAbsDiff: diff,
        });
        return tfjs;
      }
      await writeAtomic(file, bytes);
      log.info("onnx model cached", { file, ms: Math.round(performance.now() - t0) });
      keepTfjs = false;
    } finally {
      if (!keepTfjs) await tfjs.dispose();
    }
    created = await createSession(file, threads, requested, log);
  }
  const { session, providers } = created;
  let dim: number;
  try {
    // Warm-up (the first runs allocate and pick kernels), which also reads the feature length.
    dim = (await run(session, new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1, null)).length;
    await run(session, new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1, dim);
  } catch (err) {
    await session.release();
    throw err;
  }
  let disposed = false;
  const enc: Encoder = {
    id,
    dim,
    runtime: "onnx",
    backend: `onnxruntime-node:${providers.join(",")}`,
    encode: async (batch, n) => {
      if (disposed) throw new Error("encoder disposed");
      checkBatch(batch, n);
      return run(session, batch, n, dim);
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await session.release();
    },
  };
  log.info("encoder loaded", { encoder: id, runtime: "onnx", backend: enc.backend, threads, dim, file });
  return enc;
}

/** A session on the cached .onnx, or undefined when there is none (or it is unusable) and conversion is due. */
async function openCached(
  file: string,
  threads: number,
  requested: string[],
  log: EncoderLogger,
): Promise<{ session: ort.InferenceSession; providers: string[] } | undefined> {
  try {
    await access(file); // ENOENT → convert
    return await createSession(file, threads, requested, log);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      log.warn("cached onnx model unusable; converting again", { file, error: String(err) });
    }
    return undefined;
  }
}
