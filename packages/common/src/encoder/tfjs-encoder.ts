import * as tf from "@tensorflow/tfjs";
import { encoderId, loadNsfwjsInceptionFeatureModel, readNsfwjsInception } from "./nsfwjs-inception.ts";
import { ensureTfBackend } from "./tf-backend.ts";
import { checkBatch, IMAGE_SIZE, type Encoder, type EncoderConfig } from "./types.ts";

/** InceptionV3 (nsfwjs weights) on TensorFlow.js; the portable fallback (≈0.5 s/image on wasm, 2 cores). */
export async function loadTfjsEncoder(config: EncoderConfig): Promise<Encoder> {
  void config; // threads/executionProviders do not apply: tfjs-backend-wasm runs single-threaded under Node
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
