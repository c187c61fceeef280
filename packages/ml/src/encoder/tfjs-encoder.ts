import * as tf from "@tensorflow/tfjs";
import {
  loadCustomModel,
  readCustomModel,
  type CustomModelFiles,
  type LoadedCustomModel,
} from "./custom-model.ts";
import { encoderId, loadNsfwjsInceptionFeatureModel, readNsfwjsInception } from "./nsfwjs-inception.ts";
import { ensureTfBackend } from "./tf-backend.ts";
import { checkBatch, consoleLogger, IMAGE_SIZE, type Encoder, type EncoderConfig } from "./types.ts";

/** InceptionV3 (nsfwjs weights) on TensorFlow.js; the portable fallback (≈0.5 s/image on wasm, 2 cores). */
export async function loadTfjsEncoder(config: EncoderConfig): Promise<Encoder> {
  if (config.model) return loadCustomTfjsEncoder(config);
  // threads/executionProviders do not apply: tfjs-backend-wasm runs single-threaded under Node
  const backend = await ensureTfBackend();
  const { model, full } = await loadNsfwjsInceptionFeatureModel(readNsfwjsInception());
  let disposed = false;
  const encode = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    if (disposed) throw new Error("encoder disposed");
    checkBatch(batch, n);
    const out = tf.tidy(() => model.predict(tf.tensor4d(batch, [n, IMAGE_SIZE, IMAGE_SIZE, 3])) as tf.Tensor);
    try {
      const data = await out.data();
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    } finally {
      out.dispose();
    }
  };
  const enc: Encoder = {
    id: encoderId(),
    dim: 2048,
    runtime: "tfjs",
    backend: `tfjs:${backend}`,
    encode,
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      full.dispose(); // the cut model shares its layers (and weights) with the full one
    },
  };
  await encode(new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1); // warm-up
  return enc;
}

/** A user's tfjs model (layers or graph), cut at `config.model.layer`; rows flattened to [n, dim]. */
export async function loadCustomTfjsEncoder(
  config: EncoderConfig,
  files?: CustomModelFiles,
): Promise<Encoder & { readonly loaded: LoadedCustomModel }> {
  const spec = config.model;
  if (!spec) throw new Error("loadCustomTfjsEncoder: config.model is not set");
  const log = config.logger ?? consoleLogger;
  const backend = await ensureTfBackend();
  const f = files ?? (await readCustomModel(spec, config.store));
  const m = await loadCustomModel(f, spec);
  const [h, w] = m.inputHW;
  let disposed = false;
  let dim = 0;
  const forward = (batch: Float32Array, n: number): tf.Tensor =>
    tf.tidy(() => {
      let x: tf.Tensor4D = tf.tensor4d(batch, [n, IMAGE_SIZE, IMAGE_SIZE, 3]);
      if (h !== IMAGE_SIZE || w !== IMAGE_SIZE) x = tf.image.resizeBilinear(x, [h, w]);
      const y = m.predict(x);
      return y.reshape([n, -1]);
    });
  const encode = async (batch: Float32Array, n: number): Promise<Float32Array> => {
    if (disposed) throw new Error("encoder disposed");
    checkBatch(batch, n);
    const out = forward(batch, n);
    try {
      if (out.dtype !== "float32") throw new Error(`encoder output is ${out.dtype}, expected float32`);
      if (dim !== 0 && out.shape[1] !== dim)
        throw new Error(`encoder output has ${out.shape[1]} features, expected ${dim}`);
      const data = await out.data();
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    } finally {
      out.dispose();
    }
  };
  try {
    // Warm-up, which also measures dim (graph models rarely carry a static output shape).
    dim = (await encode(new Float32Array(IMAGE_SIZE * IMAGE_SIZE * 3), 1)).length;
    if (dim < 1) throw new Error("the cut layer produces no features");
  } catch (err) {
    m.dispose();
    throw new Error(
      `encoder model ${f.location} (layer ${spec.layer ?? "<output>"}): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  log.info("custom encoder model loaded", {
    encoder: f.id,
    source: f.location,
    format: f.format,
    layer: spec.layer ?? m.layers?.cutLayer ?? null,
    dim,
    inputSize: `${h}x${w}`,
    backend: `tfjs:${backend}`,
  });
  return {
    id: f.id,
    dim,
    runtime: "tfjs",
    backend: `tfjs:${backend}`,
    loaded: m,
    encode,
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      m.dispose();
    },
  };
}
