// The pretrained Keras InceptionV3 that ships inside nsfwjs@4.4.0 (uint8-quantised tfjs layers
// model), cut at `flatten_1` for the 2048-d feature (see docs/architecture.md, "The encoder").
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";

export const CUT_LAYER = "flatten_1";
export const INPUT_SIZE = 299;
export const FEATURE_DIM = 2048;

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min?: number; scale?: number; dtype: string };
}

/** One layer of a Keras functional model config (keras 2.2.4 JSON). */
export interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  /** keras 2.x: [[[inboundLayer, nodeIndex, tensorIndex, kwargs], ...]] */
  inbound_nodes: unknown[];
}

export interface NsfwjsInceptionArtifacts {
  modelTopology: Record<string, unknown>;
  weightSpecs: WeightSpec[];
  /** The quantised weight bytes, shards concatenated in order. */
  weightData: ArrayBuffer;
  /** sha256 of weightData, hex. */
  weightsSha256: string;
  /** `inceptionv3-nsfwjs-<first 12 hex of sha256>` */
  encoderId: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function nsfwjsModelDir(): string {
  // package "exports" hide dist/models/*/model.min.js, so locate the package folder itself.
  const pkgLink = path.join(here, "../../node_modules/nsfwjs");
  return path.join(realpathSync(pkgLink), "dist/models/inception_v3");
}

let cached: NsfwjsInceptionArtifacts | undefined;

/** Reads the model files (UMD bundles: topology + manifest, and 6 base64 weight shards). */
export function readNsfwjsInception(): NsfwjsInceptionArtifacts {
  if (cached) return cached;
  const dir = nsfwjsModelDir();
  const req = createRequire(path.join(dir, "model.min.js"));
  const model = req(path.join(dir, "model.min.js")) as {
    modelTopology: Record<string, unknown>;
    weightsManifest: { paths?: string[]; weights: WeightSpec[] }[];
  };
  const parts: Buffer[] = [];
  for (let i = 1; i <= 6; i++) {
    const b64 = req(path.join(dir, `group1-shard${i}of6.min.js`)) as unknown;
    if (typeof b64 !== "string") throw new Error(`nsfwjs shard ${i} is not a base64 string`);
    parts.push(Buffer.from(b64, "base64"));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const manifest = model.weightsManifest[0];
  if (!manifest) throw new Error("nsfwjs inception_v3: empty weightsManifest");
  const weightsSha256 = createHash("sha256").update(all).digest("hex");
  cached = {
    modelTopology: model.modelTopology,
    weightSpecs: manifest.weights,
    weightData,
    weightsSha256,
    encoderId: `inceptionv3-nsfwjs-${weightsSha256.slice(0, 12)}`,
  };
  return cached;
}

export function encoderId(): string {
  return readNsfwjsInception().encoderId;
}

/** The Keras layer configs, in topological (file) order. */
export function kerasLayers(a: NsfwjsInceptionArtifacts = readNsfwjsInception()): KerasLayer[] {
  const topo = a.modelTopology as {
    model_config?: { config: { layers: KerasLayer[] } };
    config?: { layers: KerasLayer[] };
  };
  const layers = topo.model_config?.config.layers ?? topo.config?.layers;
  if (!layers) throw new Error("model topology has no layers");
  return layers;
}

/** Dequantised weights (value = q * scale + min, as tfjs does on load), keyed `<layer>/<weight>`. */
export function dequantisedWeights(
  a: NsfwjsInceptionArtifacts = readNsfwjsInception(),
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const bytes = new Uint8Array(a.weightData);
  let off = 0;
  for (const spec of a.weightSpecs) {
    const size = spec.shape.reduce((p, d) => p * d, 1);
    const q = spec.quantization;
    if (spec.dtype !== "float32") throw new Error(`unsupported weight dtype ${spec.dtype} (${spec.name})`);
    const data = new Float32Array(size);
    if (!q) {
      data.set(new Float32Array(a.weightData.slice(off, off + size * 4)));
      off += size * 4;
    } else if (q.dtype === "uint8" && q.scale !== undefined && q.min !== undefined) {
      const scale = q.scale;
      const min = q.min;
      for (let i = 0; i < size; i++) data[i] = (bytes[off + i] ?? 0) * scale + min;
      off += size;
    } else {
      throw new Error(`unsupported quantization ${JSON.stringify(q)} (${spec.name})`);
    }
    out.set(spec.name, { shape: spec.shape, data });
  }
  if (off !== bytes.length) throw new Error(`weight data length ${bytes.length} != specs ${off}`);
  return out;
}

/** Loads the full tfjs layers model (tfjs dequantises on load). */
export async function loadNsfwjsInceptionLayersModel(
  a: NsfwjsInceptionArtifacts = readNsfwjsInception(),
): Promise<tf.LayersModel> {
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: a.modelTopology,
      weightSpecs: a.weightSpecs as tf.io.WeightsManifestEntry[],
      weightData: a.weightData,
    }),
  );
}

/** The model cut at `flatten_1`: NHWC [N,299,299,3] → [N,2048]. */
export async function loadNsfwjsInceptionFeatureModel(
  a?: NsfwjsInceptionArtifacts,
): Promise<{ model: tf.LayersModel; full: tf.LayersModel }> {
  const full = await loadNsfwjsInceptionLayersModel(a);
  const cut = full.getLayer(CUT_LAYER);
  const model = tf.model({ inputs: full.inputs, outputs: cut.output as tf.SymbolicTensor });
  return { model, full };
}
