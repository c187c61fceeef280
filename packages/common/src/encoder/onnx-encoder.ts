import { access, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism, homedir } from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import { CUT_LAYER, dequantisedWeights, kerasLayers, readNsfwjsInception } from "./nsfwjs-inception.ts";
import { kerasToOnnx } from "./onnx-export.ts";
import { loadTfjsEncoder } from "./tfjs-encoder.ts";
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

async function createSession(
  model: string | Uint8Array,
  threads: number,
  providers: string[],
  log: EncoderLogger,
): Promise<{ session: ort.InferenceSession; providers: string[] }> {
  const opts = (eps: string[]): ort.InferenceSession.SessionOptions => ({
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: eps,
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

async function run(session: ort.InferenceSession, batch: Float32Array, n: number): Promise<Float32Array> {
  const input = new ort.Tensor("float32", batch, [n, IMAGE_SIZE, IMAGE_SIZE, 3]);
  const out = await session.run({ [INPUT]: input });
  const t = out[OUTPUT];
  if (!t) throw new Error(`onnx output ${OUTPUT} missing`);
  try {
    const data = t.data;
    if (!(data instanceof Float32Array) || data.length !== n * 2048)
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
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  log.info("onnx model cached", { file, ms: Math.round(performance.now() - t0) });
}

/** InceptionV3 (nsfwjs weights) converted to ONNX and run on onnxruntime-node. */
export async function loadOnnxEncoder(config: EncoderConfig): Promise<Encoder> {
  const log = config.logger ?? consoleLogger;
  const threads = config.threads ?? availableParallelism();
  const requested = config.executionProviders ?? ["cpu"];
  const id = readNsfwjsInception().encoderId;
  const file = path.join(config.cacheDir ?? defaultCacheDir(), `${id}.onnx`);

  let created: { session: ort.InferenceSession; providers: string[] } | undefined;
  try {
    await access(file); // ENOENT → convert
    created = await createSession(file, threads, requested, log);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      log.warn("cached onnx model unusable; converting again", { file, error: String(err) });
    }
  }
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
