// The state of one Keras → ONNX conversion, and what every layer converter uses: weights by name,
// nodes and initializers in the order they are added, each Keras layer's ONNX tensor and its shape.
import type { KerasLayer } from "../nsfwjs-inception.ts";
import { floatTensor, node, type AttrMsg, type NodeMsg, type TensorMsg } from "../../onnx/onnx-schema.ts";

export type NamedWeights = Map<string, { shape: number[]; data: Float32Array }>;

/** Static shape of a tensor inside the graph, without batch: NCHW [c,h,w] or [features]. */
export type Shape = { kind: "image"; c: number; h: number; w: number } | { kind: "flat"; f: number };

export function pair(v: unknown, what: string): [number, number] {
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number"))
    return [v[0] as number, v[1] as number];
  throw new Error(`bad ${what}: ${JSON.stringify(v)}`);
}

/** Keras/TF padding → ONNX pads [top, left, bottom, right] and output size. */
export function pads2d(
  padding: string,
  inH: number,
  inW: number,
  k: [number, number],
  s: [number, number],
  d: [number, number] = [1, 1],
): { pads: number[]; outH: number; outW: number } {
  const ek = [(k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1] as const;
  if (padding === "valid") {
    return {
      pads: [0, 0, 0, 0],
      outH: Math.floor((inH - ek[0]) / s[0]) + 1,
      outW: Math.floor((inW - ek[1]) / s[1]) + 1,
    };
  }
  if (padding === "same") {
    const outH = Math.ceil(inH / s[0]);
    const outW = Math.ceil(inW / s[1]);
    const th = Math.max((outH - 1) * s[0] + ek[0] - inH, 0);
    const tw = Math.max((outW - 1) * s[1] + ek[1] - inW, 0);
    // TF puts the odd pixel at the end (bottom/right).
    return {
      pads: [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)],
      outH,
      outW,
    };
  }
  throw new Error(`unsupported padding '${padding}' (valid, same)`);
}

export function inboundNames(layer: KerasLayer): string[] {
  const nodes = layer.inbound_nodes;
  if (nodes.length === 0) return [];
  if (nodes.length !== 1)
    throw new Error(`layer ${layer.name}: shared layers (${nodes.length} inbound nodes) are not supported`);
  const node = nodes[0];
  if (!Array.isArray(node)) throw new Error(`layer ${layer.name}: unsupported inbound_nodes format`);
  return node.map((entry: unknown) => {
    if (Array.isArray(entry) && typeof entry[0] === "string") return entry[0];
    throw new Error(`layer ${layer.name}: unsupported inbound node entry ${JSON.stringify(entry)}`);
  });
}

export class OnnxGraph {
  readonly nodes: NodeMsg[] = [];
  readonly inits: TensorMsg[] = [];
  /** keras layer name → onnx tensor name */
  readonly tensorOf = new Map<string, string>();
  /** onnx tensor name → shape */
  readonly shapeOf = new Map<string, Shape>();
  /** keras layer name → how many layers read it */
  readonly consumers = new Map<string, number>();
  /** BatchNormalization layers already folded into the Conv2D before them. */
  readonly folded = new Set<string>();

  constructor(
    readonly layers: readonly KerasLayer[],
    private readonly weights: NamedWeights,
    readonly cutLayer: string,
    /** The graph input's name (NHWC float32). */
    readonly inputName: string,
  ) {
    for (const l of layers)
      for (const src of inboundNames(l)) this.consumers.set(src, (this.consumers.get(src) ?? 0) + 1);
  }

  w(name: string): { shape: number[]; data: Float32Array } {
    const t = this.weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t;
  }

  addInit(name: string, dims: number[], data: Float32Array): string {
    this.inits.push(floatTensor(name, dims, data));
    return name;
  }

  addNode(op: string, name: string, input: string[], output: string[], attribute: AttrMsg[] = []): void {
    this.nodes.push(node(op, name, input, output, attribute));
  }

  /** The `i`-th input of `layer`: its ONNX tensor and shape. */
  src(layer: KerasLayer, i = 0): { t: string; s: Shape } {
    const names = inboundNames(layer);
    const n = names[i];
    if (n === undefined) throw new Error(`layer ${layer.name}: missing input ${i}`);
    const t = this.tensorOf.get(n);
    if (t === undefined)
      throw new Error(`layer ${layer.name}: input ${n} not converted yet (config not topologically sorted?)`);
    const s = this.shapeOf.get(t);
    if (!s) throw new Error(`no shape for ${t}`);
    return { t, s };
  }

  /** Records the ONNX tensor (and its shape) that stands for a Keras layer's output. */
  output(layer: string, tensor: string, shape?: Shape): void {
    if (shape) this.shapeOf.set(tensor, shape);
    this.tensorOf.set(layer, tensor);
  }
}

export function image(s: Shape, layer: KerasLayer): { c: number; h: number; w: number } {
  if (s.kind !== "image") throw new Error(`layer ${layer.name} (${layer.class_name}) needs a 4-D input`);
  return s;
}

/** Converts one Keras layer into nodes of `g`. */
export type LayerConverter = (g: OnnxGraph, layer: KerasLayer) => void;
