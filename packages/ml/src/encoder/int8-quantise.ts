// Static int8 quantisation of a float ONNX graph made by ./onnx-export.ts.
//
// Weights: per-output-channel symmetric int8 ([-127, 127], zero point 0). Activations: per-tensor
// uint8 with a zero point, from ranges observed on calibration images (./calibrate.ts). uint8
// activations × int8 weights is the pairing ONNX Runtime's x86 kernels are written for (the VNNI
// dot product multiplies unsigned by signed bytes).
//
// Two layouts, both measured (docs/benchmarks.md):
// - "qdq": QuantizeLinear → DequantizeLinear pairs around every Conv/MaxPool/AveragePool/Concat
//   input, int32 biases behind their own DequantizeLinear. ONNX Runtime's CPU provider fuses
//   DQ→Conv(→Relu)→Q into one integer convolution, DQ→Concat→Q into QLinearConcat, drops the pair
//   around MaxPool when both sides share a scale, and keeps the tensors between ops in uint8.
// - "conv-integer": only convolutions go integer (ConvInteger on a quantised input, then Cast,
//   per-channel rescale, bias); pools and concats stay float.
import {
  DataType,
  decodeModel,
  encodeModel,
  int,
  node,
  tensor,
  type GraphMsg,
  type NodeMsg,
  type TensorMsg,
} from "../onnx/onnx-schema.ts";

export const QUANT_FORMATS = ["qdq", "conv-integer"] as const;
export type QuantFormat = (typeof QUANT_FORMATS)[number];

/** Ops whose float activation inputs are quantised. */
const QUANTISED_OPS = new Set(["Conv", "MaxPool", "AveragePool", "Concat"]);

export interface Range {
  min: number;
  max: number;
}

/**
 * The activation tensors the quantiser will give a scale: every float input (not an initializer)
 * of a Conv, MaxPool, AveragePool or Concat. Calibration observes exactly these.
 */
export function quantisedTensors(bytes: Uint8Array): string[] {
  const g = decodeModel(bytes).graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const out = new Set<string>();
  for (const n of g.node)
    if (QUANTISED_OPS.has(n.op_type)) for (const i of n.input) if (i !== "" && !inits.has(i)) out.add(i);
  return [...out];
}

/** The same graph with `tensors` added as float outputs, to observe them on calibration images. */
export function withObservedOutputs(bytes: Uint8Array, tensors: string[]): Uint8Array {
  const m = decodeModel(bytes);
  const have = new Set(m.graph.output.map((o) => o.name));
  for (const t of tensors)
    if (!have.has(t)) m.graph.output.push({ name: t, type: { tensor_type: { elem_type: DataType.FLOAT } } });
  return encodeModel(m);
}

/** uint8 affine parameters for a range (widened to contain 0, so zero and ReLU's floor are exact). */
export function uint8Params(r: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Per-output-channel symmetric int8 of an OIHW (or [O, ...]) weight. */
export function quantiseWeightsPerChannel(
  w: Float32Array,
  outChannels: number,
): { q: Int8Array; scales: Float32Array } {
  const per = w.length / outChannels;
  if (!Number.isInteger(per)) throw new Error(`weight of ${w.length} values is not ${outChannels} channels`);
  const q = new Int8Array(w.length);
  const scales = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    let m = 0;
    for (let i = o * per; i < (o + 1) * per; i++) m = Math.max(m, Math.abs(w[i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[o] = s;
    for (let i = o * per; i < (o + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

function floatsOf(t: TensorMsg): Float32Array {
  if (t.data_type !== DataType.FLOAT || !t.raw_data)
    throw new Error(`initializer ${t.name}: not raw float32`);
  const raw = t.raw_data;
  // Copy: protobufjs may hand back a view at an unaligned offset.
  return new Float32Array(Uint8Array.from(raw).buffer);
}

const bytesOf = (a: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface QuantiseOptions {
  format?: QuantFormat;
  /** Extra ModelProto metadata_props (e.g. the encoder id). */
  metadata?: Record<string, string>;
}

export interface QuantiseResult {
  bytes: Uint8Array;
  /** Convolutions whose weights went int8. */
  convs: number;
  /** Activation tensors given a uint8 scale. */
  tensors: number;
}

/**
 * Quantises a float graph given each quantised tensor's observed range (`quantisedTensors()`).
 * Every consumer of a quantised tensor reads it through its own DequantizeLinear, so the producer's
 * only consumer is the QuantizeLinear (what ONNX Runtime's fusion requires).
 */
export function quantiseModel(
  bytes: Uint8Array,
  ranges: ReadonlyMap<string, Range>,
  opts: QuantiseOptions = {},
): QuantiseResult {
  const format = opts.format ?? "qdq";
  const m = decodeModel(bytes);
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, NodeMsg>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);

  const targets = format === "qdq" ? quantisedTensors(bytes) : convInputs(g, inits);
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  for (const t of targets) {
    const r = ranges.get(t);
    if (!r) throw new Error(`no calibration range for tensor ${t}`);
    params.set(t, uint8Params(r));
  }
  // MaxPool passes uint8 through unchanged when its output shares its input's scale.
  if (format === "qdq")
    for (const n of g.node)
      if (n.op_type === "MaxPool" && params.has(n.output[0]!) && params.has(n.input[0]!))
        params.set(n.output[0]!, params.get(n.input[0]!)!);

  const newInits: TensorMsg[] = [];
  const scalar = (name: string, dt: number, raw: Uint8Array, dims: number[] = []): string => {
    newInits.push(tensor(name, dims, dt, raw));
    return name;
  };
  const qparams = (t: string): { s: string; z: string } => {
    const p = params.get(t)!;
    return {
      s: scalar(`${t}/scale`, DataType.FLOAT, bytesOf(Float32Array.of(p.scale))),
      z: scalar(`${t}/zero_point`, DataType.UINT8, Uint8Array.of(p.zeroPoint)),
    };
  };

  const out: NodeMsg[] = [];
  const qp = new Map<string, { s: string; z: string }>();
  for (const t of targets) qp.set(t, qparams(t));
  // Graph inputs that are quantised get their Q right at the start.
  for (const t of targets) if (!producer.has(t)) out.push(qNode(t, qp.get(t)!));

  let convs = 0;
  let dqCount = 0;
  const dq = (t: string): string => {
    const p = qp.get(t)!;
    const name = `${t}/dq${dqCount++}`;
    out.push(node("DequantizeLinear", name, [`${t}/q`, p.s, p.z], [name]));
    return name;
  };

  for (const n of g.node) {
    if (format === "conv-integer" && n.op_type === "Conv" && qp.has(n.input[0]!)) {
      out.push(...convInteger(n, qp.get(n.input[0]!)!, params.get(n.input[0]!)!.scale, inits, newInits));
      convs++;
    } else if (format === "qdq" && n.op_type === "Conv") {
      const x = n.input[0]!;
      const xs = params.get(x)?.scale;
      if (xs === undefined) throw new Error(`conv ${n.name}: input ${x} has no scale`);
      const w = quantiseConvWeights(n, inits, xs, newInits);
      const inputs = [
        dq(x),
        perChannelDq(w.q, w.scales, DataType.INT8, out, newInits),
        ...(w.bias ? [perChannelDq(w.bias, w.biasScales, DataType.INT32, out, newInits)] : []),
      ];
      out.push({ ...n, input: inputs });
      convs++;
    } else {
      const input = n.input.map((i) => (qp.has(i) ? dq(i) : i));
      out.push({ ...n, input });
    }
    for (const o of n.output) if (qp.has(o)) out.push(qNode(o, qp.get(o)!));
  }

  g.node = out;
  const read = new Set(out.flatMap((n) => n.input));
  // Drop the float weights the int8 ones replaced.
  g.initializer = [...g.initializer.filter((t) => read.has(t.name)), ...newInits];
  if (opts.metadata) {
    m.metadata_props = [
      ...(m.metadata_props ?? []).filter((p) => !(p.key in opts.metadata!)),
      ...Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
    ];
  }
  return { bytes: encodeModel(m), convs, tensors: targets.length };
}

function qNode(t: string, p: { s: string; z: string }): NodeMsg {
  return node("QuantizeLinear", `${t}/Q`, [t, p.s, p.z], [`${t}/q`]);
}

function convInputs(g: GraphMsg, inits: Map<string, TensorMsg>): string[] {
  const out = new Set<string>();
  for (const n of g.node) if (n.op_type === "Conv" && !inits.has(n.input[0]!)) out.add(n.input[0]!);
  return [...out];
}

interface QuantConv {
  q: TensorMsg;
  scales: Float32Array;
  bias?: TensorMsg;
  biasScales: Float32Array;
}

function quantiseConvWeights(
  n: NodeMsg,
  inits: Map<string, TensorMsg>,
  inputScale: number,
  newInits: TensorMsg[],
  { intBias = true }: { intBias?: boolean } = {},
): QuantConv {
  const wt = inits.get(n.input[1]!);
  if (!wt) throw new Error(`conv ${n.name}: weight ${n.input[1]} is not an initializer`);
  const outC = wt.dims[0]!;
  const { q, scales } = quantiseWeightsPerChannel(floatsOf(wt), outC);
  const qT = tensor(`${wt.name}/int8`, wt.dims, DataType.INT8, bytesOf(q));
  newInits.push(qT);
  const biasScales = scales.map((s) => s * inputScale);
  const bname = n.input[2];
  let bias: TensorMsg | undefined;
  if (bname && intBias) {
    const bt = inits.get(bname);
    if (!bt) throw new Error(`conv ${n.name}: bias ${bname} is not an initializer`);
    const b = floatsOf(bt);
    // int32 bias at scale x_scale·w_scale: what the integer accumulator adds before requantising.
    const bq = Int32Array.from(b, (v, o) => Math.round(v / biasScales[o]!));
    bias = tensor(`${bname}/int32`, bt.dims, DataType.INT32, bytesOf(bq));
    newInits.push(bias);
  }
  return { q: qT, scales, bias, biasScales };
}

/** DequantizeLinear along axis 0 of a per-channel tensor (weights: int8 zero points; biases: int32). */
function perChannelDq(
  t: TensorMsg,
  scales: Float32Array,
  zeroType: number,
  out: NodeMsg[],
  newInits: TensorMsg[],
): string {
  const c = scales.length;
  const s = `${t.name}/scale`;
  const z = `${t.name}/zero_point`;
  const zeros = zeroType === DataType.INT32 ? new Int32Array(c) : new Int8Array(c);
  newInits.push(tensor(s, [c], DataType.FLOAT, bytesOf(Float32Array.from(scales))));
  newInits.push(tensor(z, [c], zeroType, bytesOf(zeros)));
  const name = `${t.name}/dq`;
  out.push(node("DequantizeLinear", name, [t.name, s, z], [name], [int("axis", 0)]));
  return name;
}

/**
 * ConvInteger(x_q, w_int8) → Cast → × (x_scale·w_scale per channel) → + bias: the integer product
 * with the rescale left to separate float ops (no fused requantisation).
 */
function convInteger(
  n: NodeMsg,
  x: { s: string; z: string },
  inputScale: number,
  inits: Map<string, TensorMsg>,
  newInits: TensorMsg[],
): NodeMsg[] {
  const w = quantiseConvWeights(n, inits, inputScale, newInits, { intBias: false });
  const outC = w.scales.length;
  // ORT's ConvInteger takes a per-tensor weight zero point only; symmetric weights have 0 everywhere.
  const wz = `${w.q.name}/zero_point`;
  newInits.push(tensor(wz, [], DataType.INT8, new Uint8Array(1)));
  const sc = `${n.name}/rescale`;
  newInits.push(tensor(sc, [outC, 1, 1], DataType.FLOAT, bytesOf(Float32Array.from(w.biasScales))));
  const y = n.output[0]!;
  const nodes: NodeMsg[] = [
    node(
      "ConvInteger",
      `${n.name}/ConvInteger`,
      [`${n.input[0]}/q`, w.q.name, x.z, wz],
      [`${y}/int32`],
      n.attribute,
    ),
    node("Cast", `${n.name}/Cast`, [`${y}/int32`], [`${y}/acc`], [int("to", DataType.FLOAT)]),
  ];
  const bname = n.input[2];
  if (bname) {
    const bt = inits.get(bname)!;
    const b = `${bname}/chw`;
    newInits.push(tensor(b, [outC, 1, 1], DataType.FLOAT, bt.raw_data!));
    nodes.push(
      node("Mul", `${n.name}/Rescale`, [`${y}/acc`, sc], [`${y}/scaled`]),
      node("Add", `${n.name}/Bias`, [`${y}/scaled`, b], [y]),
    );
  } else {
    nodes.push(node("Mul", `${n.name}/Rescale`, [`${y}/acc`, sc], [y]));
  }
  return nodes;
}
