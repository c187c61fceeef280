// A user-supplied tfjs model as the encoder (docs/architecture.md, "The encoder"): a layers
// model cut at a named layer, or a graph model executed up to a named node. model.json and its
// weight shards are read here (local file, http(s), or the object store) and handed to tfjs with
// `tf.io.fromMemory`, since pure @tensorflow/tfjs has no file:// handler.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import type { ObjectStore } from "@capflow/common";
import type { KerasLayer } from "./nsfwjs-inception.ts";
import type { NamedWeights } from "./onnx-export.ts";
import { IMAGE_SIZE, type EncoderModelConfig } from "./types.ts";

export const STORE_PREFIX = "store:";
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export type ModelFormat = "layers-model" | "graph-model";

/** model.json and its weights, read but not yet given to tfjs. */
export interface CustomModelFiles {
  format: ModelFormat;
  /** What the model.json was read from, for logs. */
  location: string;
  artifacts: tf.io.ModelArtifacts;
  /** sha256 of the weight bytes (shards concatenated in manifest order), hex. */
  weightsSha256: string;
  /** `<name>-<first 12 hex of sha256(weight bytes + cut layer)>` */
  id: string;
  name: string;
}

export interface LoadedCustomModel {
  files: CustomModelFiles;
  /** Model input [H, W]; 299×299 batches are resized to it when different. */
  inputHW: [number, number];
  /** NHWC batch → [N, ...] (the caller flattens); must be called inside tf.tidy. */
  predict(x: tf.Tensor4D): tf.Tensor;
  /** Layers model only: the full model (owns the weights) and the name of the layer cut at. */
  layers?: { full: tf.LayersModel; cutLayer: string };
  dispose(): void;
}

interface ModelJson {
  format?: string;
  modelTopology?: Record<string, unknown>;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  [k: string]: unknown;
}

type Reader = { location: string; defaultName: string; read: (rel: string | null) => Promise<Uint8Array> };

/** Where model.json is, and how to read it (`rel` null) or a file next to it. */
async function locate(source: string, store: ObjectStore | undefined): Promise<Reader> {
  const stem = (p: string): string => {
    const base = path.posix.basename(p);
    return base === "model.json" || base === ""
      ? path.posix.basename(path.posix.dirname(p))
      : base.replace(/\.json$/i, "");
  };
  if (source.startsWith(STORE_PREFIX)) {
    const key = source.slice(STORE_PREFIX.length).replace(/^\/+/, "");
    if (!key) throw new Error(`encoder model source '${source}': empty object-store key`);
    if (!store)
      throw new Error(`encoder model source '${source}' needs an object store (EncoderConfig.store)`);
    const dir = path.posix.dirname(key);
    return {
      location: source,
      defaultName: stem(key),
      read: async (rel) =>
        store.get(rel === null ? key : path.posix.normalize(dir === "." ? rel : `${dir}/${rel}`)),
    };
  }
  if (/^https?:\/\//i.test(source)) {
    const url = new URL(source);
    return {
      location: url.href,
      defaultName: stem(decodeURIComponent(url.pathname)),
      read: async (rel) => {
        const u = rel === null ? url : new URL(rel, url);
        const res = await fetch(u);
        if (!res.ok) throw new Error(`GET ${u.href}: HTTP ${res.status} ${res.statusText}`);
        return new Uint8Array(await res.arrayBuffer());
      },
    };
  }
  let file = source.startsWith("file:") ? fileURLToPath(source) : path.resolve(source);
  const st = await stat(file).catch((err: unknown) => {
    throw new Error(`encoder model source '${source}': ${(err as Error).message}`);
  });
  if (st.isDirectory()) file = path.join(file, "model.json");
  const dir = path.dirname(file);
  return {
    location: file,
    defaultName: stem(file.split(path.sep).join("/")),
    read: async (rel) => readFile(rel === null ? file : path.resolve(dir, rel)),
  };
}

function detectFormat(json: ModelJson, location: string): ModelFormat {
  if (json.format === "layers-model" || json.format === "graph-model") return json.format;
  const topo = json.modelTopology;
  if (!topo || typeof topo !== "object") throw new Error(`${location}: model.json has no modelTopology`);
  if (Array.isArray((topo as { node?: unknown }).node)) return "graph-model";
  if ("class_name" in topo || "model_config" in topo || "keras_version" in topo) return "layers-model";
  throw new Error(
    `${location}: cannot tell a layers model from a graph model (format '${String(json.format)}')`,
  );
}

/** Reads model.json + weight shards and computes the encoder id. */
export async function readCustomModel(
  model: EncoderModelConfig,
  store?: ObjectStore,
): Promise<CustomModelFiles> {
  const where = await locate(model.source, store);
  const raw = await where.read(null);
  let json: ModelJson;
  try {
    json = JSON.parse(Buffer.from(raw).toString("utf8")) as ModelJson;
  } catch (err) {
    throw new Error(`${where.location}: model.json is not JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  const format = detectFormat(json, where.location);
  const manifest = json.weightsManifest ?? [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of manifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      try {
        parts.push(await where.read(p));
      } catch (err) {
        throw new Error(`${where.location}: weight shard '${p}': ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const weightsSha256 = createHash("sha256").update(all).digest("hex");
  const idHash = createHash("sha256")
    .update(all)
    .update(model.layer ?? "")
    .digest("hex")
    .slice(0, 12);
  const name = model.name ?? sanitiseName(where.defaultName);
  if (!NAME_RE.test(name)) throw new Error(`encoder name '${name}' must match ${String(NAME_RE)}`);
  const artifacts: tf.io.ModelArtifacts = {
    format,
    generatedBy: json.generatedBy as string | undefined,
    convertedBy: json.convertedBy as string | null | undefined,
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData,
    trainingConfig: json.trainingConfig as tf.io.TrainingConfig | undefined,
    signature: json.signature as object | undefined,
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts["userDefinedMetadata"],
    modelInitializer: json.modelInitializer as object | undefined,
    initializerSignature: json.initializerSignature as object | undefined,
  };
  return { format, location: where.location, artifacts, weightsSha256, id: `${name}-${idHash}`, name };
}

function sanitiseName(s: string): string {
  const n = s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[-._]+|-+$/g, "");
  return n || "custom";
}

function staticHW(
  shape: readonly (number | null | undefined)[] | undefined,
  what: string,
): [number, number] | undefined {
  if (!shape || shape.length !== 4)
    throw new Error(`${what}: input must be 4-D NHWC, got ${JSON.stringify(shape)}`);
  const [, h, w, c] = shape;
  if (typeof c === "number" && c > 0 && c !== 3)
    throw new Error(`${what}: input has ${c} channels, expected 3 (RGB)`);
  if (typeof h === "number" && h > 0 && typeof w === "number" && w > 0) return [h, w];
  return undefined;
}

function inputHW(
  fromModel: [number, number] | undefined,
  inputSize: number | undefined,
  what: string,
): [number, number] {
  if (inputSize !== undefined) {
    if (fromModel && (fromModel[0] !== inputSize || fromModel[1] !== inputSize))
      throw new Error(`${what}: inputSize ${inputSize} but the model takes ${fromModel[0]}×${fromModel[1]}`);
    return [inputSize, inputSize];
  }
  return fromModel ?? [IMAGE_SIZE, IMAGE_SIZE];
}

/** Loads a custom model into tfjs and cuts it; the tfjs backend must already be set. */
export async function loadCustomModel(
  files: CustomModelFiles,
  model: EncoderModelConfig,
): Promise<LoadedCustomModel> {
  const what = `encoder model ${files.location}`;
  if (files.format === "graph-model") {
    const g = await tf.loadGraphModel(tf.io.fromMemory(files.artifacts));
    try {
      if (g.inputs.length !== 1)
        throw new Error(`${what}: graph model has ${g.inputs.length} inputs, expected 1`);
      const out = model.layer ?? (g.outputs.length === 1 ? g.outputs[0]!.name : undefined);
      if (out === undefined)
        throw new Error(
          `${what}: graph model has ${g.outputs.length} outputs; set the layer (output node) to use`,
        );
      const hw = inputHW(staticHW(g.inputs[0]!.shape, what), model.inputSize, what);
      return {
        files,
        inputHW: hw,
        predict: (x) => g.execute(x, out) as tf.Tensor,
        dispose: () => g.dispose(),
      };
    } catch (err) {
      g.dispose();
      throw err;
    }
  }
  const full = await tf.loadLayersModel(tf.io.fromMemory(files.artifacts));
  try {
    if (full.inputs.length !== 1)
      throw new Error(`${what}: model has ${full.inputs.length} inputs, expected 1`);
    let cut = full;
    let cutLayer: string;
    if (model.layer !== undefined) {
      let layer: tf.layers.Layer;
      try {
        layer = full.getLayer(model.layer);
      } catch {
        const names = full.layers.map((l) => l.name);
        throw new Error(
          `${what}: no layer '${model.layer}' (layers: ${names.slice(0, 20).join(", ")}${names.length > 20 ? ", …" : ""})`,
        );
      }
      const output = layer.output;
      if (Array.isArray(output)) throw new Error(`${what}: layer '${model.layer}' has several outputs`);
      cut = tf.model({ inputs: full.inputs, outputs: output });
      cutLayer = model.layer;
    } else {
      if (full.outputs.length !== 1)
        throw new Error(`${what}: model has ${full.outputs.length} outputs; set the layer to cut at`);
      cutLayer = full.outputLayers[0]!.name;
    }
    const hw = inputHW(staticHW(full.inputs[0]!.shape, what), model.inputSize, what);
    return {
      files,
      inputHW: hw,
      predict: (x) => cut.predict(x) as tf.Tensor,
      layers: { full, cutLayer },
      dispose: () => full.dispose(), // the cut model shares the full one's layers and weights
    };
  } catch (err) {
    full.dispose();
    throw err;
  }
}

/** The Keras layer configs of a functional layers model, for ../onnx-export.ts. */
export function customKerasLayers(files: CustomModelFiles): KerasLayer[] {
  const topo = files.artifacts.modelTopology as {
    class_name?: string;
    model_config?: { class_name?: string; config: { layers?: KerasLayer[] } };
    config?: { layers?: KerasLayer[] };
  };
  const cls = topo.model_config?.class_name ?? topo.class_name;
  if (cls === "Sequential")
    throw new Error("Sequential models are not converted (save it as a functional tf.model)");
  const layers = topo.model_config?.config.layers ?? topo.config?.layers;
  if (!Array.isArray(layers)) throw new Error("model topology has no layer list");
  for (const l of layers)
    if (!Array.isArray(l.inbound_nodes))
      throw new Error(`layer ${l.name}: inbound_nodes in an unsupported (non keras 2) format`);
  return layers;
}

/** The loaded (dequantised) weights keyed `<layer>/<kernel|bias|gamma|...>`, as the converter wants. */
export function namedWeights(full: tf.LayersModel): NamedWeights {
  const out: NamedWeights = new Map();
  for (const layer of full.layers) {
    for (const w of layer.weights) {
      const short = w.originalName.split("/").pop()!.replace(/:\d+$/, "");
      const v = w.read();
      out.set(`${layer.name}/${short}`, { shape: v.shape.slice(), data: Float32Array.from(v.dataSync()) });
    }
  }
  return out;
}
