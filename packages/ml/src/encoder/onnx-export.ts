// Keras (tfjs layers JSON config + weights) → ONNX ModelProto, written with protobufjs.
//
// Only the few ONNX messages we emit are declared, through protobufjs reflection, with the field
// numbers of onnx/onnx.proto (proto2). The graph takes NHWC float32 [N,H,W,C] (what Keras and
// our preprocessing produce), transposes once to NCHW (ONNX's conv layout) and runs NCHW from
// there; BatchNormalization that follows a Conv2D is folded into the conv's weights and bias.
//
// Supported layers: InputLayer, Conv2D (valid/same, strides, dilation, bias or not, linear/relu
// activation), BatchNormalization (folded, or standalone), Activation (relu/linear/sigmoid/tanh/
// softmax), MaxPooling2D, AveragePooling2D (same padding excludes the pad from the average, like
// TF: count_include_pad=0), Concatenate (channel axis), GlobalAveragePooling2D, Flatten, Dropout
// (identity), Dense. Conversion stops at `cutLayer`.
import protobuf from "protobufjs";
import type { KerasLayer } from "./nsfwjs-inception.ts";

// ---------------------------------------------------------------------------------------------
// ONNX schema subset (field numbers from onnx.proto)

const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
const DataType = { FLOAT: 1, INT64: 7 } as const;

function field(name: string, id: number, type: string, rule?: "repeated"): protobuf.Field {
  return new protobuf.Field(name, id, type, rule);
}

function buildSchema(): { ModelProto: protobuf.Type } {
  const root = new protobuf.Root();
  const onnx = root.define("onnx");
  onnx.add(
    new protobuf.Type("TensorProto")
      .add(field("dims", 1, "int64", "repeated"))
      .add(field("data_type", 2, "int32"))
      .add(field("float_data", 4, "float", "repeated"))
      .add(field("int64_data", 7, "int64", "repeated"))
      .add(field("name", 8, "string"))
      .add(field("raw_data", 9, "bytes"))
      .add(field("doc_string", 12, "string")),
  );
  onnx.add(
    new protobuf.Type("AttributeProto")
      .add(field("name", 1, "string"))
      .add(field("f", 2, "float"))
      .add(field("i", 3, "int64"))
      .add(field("s", 4, "bytes"))
      .add(field("t", 5, "TensorProto"))
      .add(field("floats", 7, "float", "repeated"))
      .add(field("ints", 8, "int64", "repeated"))
      .add(field("doc_string", 13, "string"))
      .add(field("type", 20, "int32")),
  );
  onnx.add(
    new protobuf.Type("NodeProto")
      .add(field("input", 1, "string", "repeated"))
      .add(field("output", 2, "string", "repeated"))
      .add(field("name", 3, "string"))
      .add(field("op_type", 4, "string"))
      .add(field("attribute", 5, "AttributeProto", "repeated"))
      .add(field("doc_string", 6, "string"))
      .add(field("domain", 7, "string")),
  );
  const dimension = new protobuf.Type("Dimension")
    .add(field("dim_value", 1, "int64"))
    .add(field("dim_param", 2, "string"))
    .add(field("denotation", 3, "string"));
  onnx.add(
    new protobuf.Type("TensorShapeProto").add(dimension).add(field("dim", 1, "Dimension", "repeated")),
  );
  const tensorType = new protobuf.Type("Tensor")
    .add(field("elem_type", 1, "int32"))
    .add(field("shape", 2, "TensorShapeProto"));
  onnx.add(
    new protobuf.Type("TypeProto")
      .add(tensorType)
      .add(field("tensor_type", 1, "Tensor"))
      .add(field("denotation", 6, "string")),
  );
  onnx.add(
    new protobuf.Type("ValueInfoProto")
      .add(field("name", 1, "string"))
      .add(field("type", 2, "TypeProto"))
      .add(field("doc_string", 3, "string")),
  );
  onnx.add(
    new protobuf.Type("GraphProto")
      .add(field("node", 1, "NodeProto", "repeated"))
      .add(field("name", 2, "string"))
      .add(field("initializer", 5, "TensorProto", "repeated"))
      .add(field("doc_string", 10, "string"))
      .add(field("input", 11, "ValueInfoProto", "repeated"))
      .add(field("output", 12, "ValueInfoProto", "repeated"))
      .add(field("value_info", 13, "ValueInfoProto", "repeated")),
  );
  onnx.add(
    new protobuf.Type("OperatorSetIdProto")
      .add(field("domain", 1, "string"))
      .add(field("version", 2, "int64")),
  );
  onnx.add(
    new protobuf.Type("StringStringEntryProto")
      .add(field("key", 1, "string"))
      .add(field("value", 2, "string")),
  );
  onnx.add(
    new protobuf.Type("ModelProto")
      .add(field("ir_version", 1, "int64"))
      .add(field("producer_name", 2, "string"))
      .add(field("producer_version", 3, "string"))
      .add(field("domain", 4, "string"))
      .add(field("model_version", 5, "int64"))
      .add(field("doc_string", 6, "string"))
      .add(field("graph", 7, "GraphProto"))
      .add(field("opset_import", 8, "OperatorSetIdProto", "repeated"))
      .add(field("metadata_props", 14, "StringStringEntryProto", "repeated")),
  );
  root.resolveAll();
  return { ModelProto: root.lookupType("onnx.ModelProto") };
}

let schema: { ModelProto: protobuf.Type } | undefined;
export function onnxSchema(): { ModelProto: protobuf.Type } {
  schema ??= buildSchema();
  return schema;
}

// Plain-object shapes of the messages (snake_case keys, as declared above).
interface TensorMsg {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  int64_data?: number[];
}
interface AttrMsg {
  name: string;
  type: number;
  i?: number;
  f?: number;
  s?: Uint8Array;
  ints?: number[];
  floats?: number[];
}
interface NodeMsg {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttrMsg[];
}
type DimMsg = { dim_value: number } | { dim_param: string };
interface ValueInfoMsg {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: DimMsg[] } } };
}

// ---------------------------------------------------------------------------------------------

export type NamedWeights = Map<string, { shape: number[]; data: Float32Array }>;

export interface ConvertOptions {
  /** Stop at this layer; its output is the graph output. */
  cutLayer: string;
  inputName?: string; // default "input"
  outputName?: string; // default "features"
  opset?: number; // default 13
  graphName?: string;
  producerVersion?: string;
  /** A 4-D cut output is flattened in Keras (NHWC) order to [N, h*w*c], as tfjs `reshape([n, -1])` does. */
  flattenOutput?: boolean;
  /** Stored as ModelProto metadata_props. */
  metadata?: Record<string, string>;
}

export interface ConvertResult {
  bytes: Uint8Array;
  nodeCount: number;
  initializerCount: number;
  inputName: string;
  outputName: string;
  /** Output shape without the batch dimension. */
  outputShape: number[];
}

/** Static shape of a tensor inside the graph, without batch: NCHW [c,h,w] or [features]. */
type Shape = { kind: "image"; c: number; h: number; w: number } | { kind: "flat"; f: number };

const ints = (name: string, v: number[]): AttrMsg => ({ name, type: AttributeType.INTS, ints: v });
const int = (name: string, v: number): AttrMsg => ({ name, type: AttributeType.INT, i: v });
const flt = (name: string, v: number): AttrMsg => ({ name, type: AttributeType.FLOAT, f: v });

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number"))
    return [v[0] as number, v[1] as number];
  throw new Error(`bad ${what}: ${JSON.stringify(v)}`);
}

/** Keras/TF padding → ONNX pads [top, left, bottom, right] and output size. */
function pads2d(
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

function inboundNames(layer: KerasLayer): string[] {
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

function f32bytes(a: Float32Array): Uint8Array {
  // ONNX raw_data is little-endian, as is every platform Node runs on in practice.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Converts a Keras functional model (layer configs in topological order + named weights
 * `<layer>/<kernel|bias|gamma|beta|moving_mean|moving_variance>`) to ONNX bytes.
 */
export function kerasToOnnx(
  layers: KerasLayer[],
  weights: NamedWeights,
  opts: ConvertOptions,
): ConvertResult {
  const inputName = opts.inputName ?? "input";
  const outputName = opts.outputName ?? "features";
  const opset = opts.opset ?? 13;

  const nodes: NodeMsg[] = [];
  const inits: TensorMsg[] = [];
  const tensorOf = new Map<string, string>(); // keras layer name → onnx tensor name
  const shapeOf = new Map<string, Shape>(); // onnx tensor name → shape
  const consumers = new Map<string, number>();
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const l of layers)
    for (const src of inboundNames(l)) consumers.set(src, (consumers.get(src) ?? 0) + 1);
  if (!byName.has(opts.cutLayer)) throw new Error(`cut layer '${opts.cutLayer}' not in model`);

  const w = (name: string): { shape: number[]; data: Float32Array } => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing weight ${name}`);
    return t;
  };
  const addInit = (name: string, dims: number[], data: Float32Array): string => {
    inits.push({ name, dims, data_type: DataType.FLOAT, raw_data: f32bytes(data) });
    return name;
  };
  const addNode = (
    op: string,
    name: string,
    input: string[],
    output: string[],
    attribute: AttrMsg[] = [],
  ): void => {
    nodes.push({ name, op_type: op, input, output, attribute });
  };
  const src = (layer: KerasLayer, i = 0): { t: string; s: Shape } => {
    const names = inboundNames(layer);
    const n = names[i];
    if (n === undefined) throw new Error(`layer ${layer.name}: missing input ${i}`);
    const t = tensorOf.get(n);
    if (t === undefined)
      throw new Error(`layer ${layer.name}: input ${n} not converted yet (config not topologically sorted?)`);
    const s = shapeOf.get(t);
    if (!s) throw new Error(`no shape for ${t}`);
    return { t, s };
  };
  const image = (s: Shape, layer: KerasLayer): { c: number; h: number; w: number } => {
    if (s.kind !== "image") throw new Error(`layer ${layer.name} (${layer.class_name}) needs a 4-D input`);
    return s;
  };
  const emitActivation = (act: string, input: string, out: string, layer: string): string => {
    switch (act) {
      case "linear":
        return input;
      case "relu":
      case "sigmoid":
      case "tanh": {
        const op = { relu: "Relu", sigmoid: "Sigmoid", tanh: "Tanh" }[act];
        addNode(op, `${layer}/${op}`, [input], [out]);
        return out;
      }
      case "softmax":
        addNode("Softmax", `${layer}/Softmax`, [input], [out], [int("axis", -1)]);
        return out;
      default:
        throw new Error(
          `layer ${layer}: unsupported activation '${act}' (linear, relu, sigmoid, tanh, softmax)`,
        );
    }
  };
  /** The BatchNormalization layer that can be folded into `conv` (its only consumer), if any. */
  const foldableBn = (conv: KerasLayer): KerasLayer | undefined => {
    if ((conv.config.activation ?? "linear") !== "linear") return undefined;
    if ((consumers.get(conv.name) ?? 0) !== 1 || conv.name === opts.cutLayer) return undefined;
    const bn = layers.find((l) => l.class_name === "BatchNormalization" && inboundNames(l)[0] === conv.name);
    if (!bn) return undefined;
    const axis = bn.config.axis;
    if (axis !== 3 && axis !== -1) return undefined;
    return bn;
  };
  /** Per-channel (scale, shift) of a Keras BN layer: y = x*scale + shift. */
  const bnAffine = (bn: KerasLayer, channels: number): { scale: Float64Array; shift: Float64Array } => {
    const eps = typeof bn.config.epsilon === "number" ? bn.config.epsilon : 1e-3;
    const mean = w(`${bn.name}/moving_mean`).data;
    const variance = w(`${bn.name}/moving_variance`).data;
    const gamma = bn.config.scale === false ? undefined : w(`${bn.name}/gamma`).data;
    const beta = bn.config.center === false ? undefined : w(`${bn.name}/beta`).data;
    if (mean.length !== channels)
      throw new Error(`BN ${bn.name}: ${mean.length} channels, expected ${channels}`);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + eps);
      shift[c] = (beta ? beta[c]! : 0) - mean[c]! * scale[c]!;
    }
    return { scale, shift };
  };

  const folded = new Set<string>();
  let outputShape: number[] | undefined;

  for (const layer of layers) {
    const name = layer.name;
    const cfg = layer.config;
    const fmt = cfg.data_format;
    if (fmt !== undefined && fmt !== "channels_last")
      throw new Error(`layer ${name}: data_format ${String(fmt)} unsupported`);
    switch (layer.class_name) {
      case "InputLayer": {
        const shape = (cfg.batch_input_shape ?? cfg.batchInputShape) as (number | null)[] | undefined;
        if (!shape || shape.length !== 4) throw new Error(`input ${name}: need a 4-D batch_input_shape`);
        const [, h, wd, c] = shape;
        if (typeof h !== "number" || typeof wd !== "number" || typeof c !== "number")
          throw new Error(`input ${name}: H, W, C must be static`);
        const t = `${name}/nchw`;
        addNode("Transpose", `${name}/to_nchw`, [inputName], [t], [ints("perm", [0, 3, 1, 2])]);
        tensorOf.set(name, t);
        shapeOf.set(t, { kind: "image", c, h, w: wd });
        break;
      }
      case "Conv2D": {
        const { t: x, s } = src(layer);
        const ins = image(s, layer);
        const k = pair(cfg.kernel_size, "kernel_size");
        const st = pair(cfg.strides ?? [1, 1], "strides");
        const dl = pair(cfg.dilation_rate ?? [1, 1], "dilation_rate");
        const kern = w(`${name}/kernel`); // [kh, kw, cin, cout]
        const [kh, kw, cin, cout] = kern.shape as [number, number, number, number];
        if (kh !== k[0] || kw !== k[1] || cin !== ins.c)
          throw new Error(`conv ${name}: kernel ${kern.shape} vs input channels ${ins.c}`);
        const bias = cfg.use_bias ? w(`${name}/bias`).data : undefined;
        const bn = foldableBn(layer);
        const aff = bn ? bnAffine(bn, cout) : undefined;
        // Transpose HWIO → OIHW, folding the BN scale into each output channel.
        const W = new Float32Array(cout * cin * kh * kw);
        for (let o = 0; o < cout; o++) {
          const sc = aff ? aff.scale[o]! : 1;
          for (let i = 0; i < cin; i++)
            for (let y = 0; y < kh; y++)
              for (let xx = 0; xx < kw; xx++)
                W[((o * cin + i) * kh + y) * kw + xx] = kern.data[((y * kw + xx) * cin + i) * cout + o]! * sc;
        }
        let B: Float32Array | undefined;
        if (bias || aff) {
          B = new Float32Array(cout);
          for (let o = 0; o < cout; o++)
            B[o] = (bias ? bias[o]! : 0) * (aff ? aff.scale[o]! : 1) + (aff ? aff.shift[o]! : 0);
        }
        const { pads, outH, outW } = pads2d(String(cfg.padding), ins.h, ins.w, k, st, dl);
        const inputs = [x, addInit(`${name}/W`, [cout, cin, kh, kw], W)];
        if (B) inputs.push(addInit(`${name}/B`, [cout], B));
        const outLayer = bn ?? layer;
        const convOut = `${outLayer.name}`;
        addNode(
          "Conv",
          `${name}/Conv`,
          inputs,
          [convOut],
          [
            ints("kernel_shape", [kh, kw]),
            ints("strides", st),
            ints("dilations", dl),
            ints("pads", pads),
            int("group", 1),
          ],
        );
        const actOut = emitActivation(String(cfg.activation ?? "linear"), convOut, `${name}/act`, name);
        const shape: Shape = { kind: "image", c: cout, h: outH, w: outW };
        shapeOf.set(convOut, shape);
        shapeOf.set(actOut, shape);
        tensorOf.set(name, actOut);
        if (bn) {
          folded.add(bn.name);
          tensorOf.set(bn.name, convOut);
        }
        break;
      }
      case "BatchNormalization": {
        if (folded.has(name)) break;
        const { t: x, s } = src(layer);
        const ins = image(s, layer);
        if (cfg.axis !== 3 && cfg.axis !== -1)
          throw new Error(`BN ${name}: axis ${String(cfg.axis)} unsupported`);
        const { scale, shift } = bnAffine(layer, ins.c);
        // Standalone BN as an affine map: x * scale + shift, with [C,1,1] constants.
        const sc = addInit(`${name}/scale`, [ins.c, 1, 1], Float32Array.from(scale));
        const sh = addInit(`${name}/shift`, [ins.c, 1, 1], Float32Array.from(shift));
        addNode("Mul", `${name}/Mul`, [x, sc], [`${name}/mul`]);
        addNode("Add", `${name}/Add`, [`${name}/mul`, sh], [name]);
        shapeOf.set(name, s);
        tensorOf.set(name, name);
        break;
      }
      case "Activation": {
        const { t: x, s } = src(layer);
        const out = emitActivation(String(cfg.activation), x, name, name);
        shapeOf.set(out, s);
        tensorOf.set(name, out);
        break;
      }
      case "ReLU": {
        const { t: x, s } = src(layer);
        if (cfg.max_value != null || (typeof cfg.negative_slope === "number" && cfg.negative_slope !== 0))
          throw new Error(`ReLU ${name}: max_value/negative_slope unsupported`);
        addNode("Relu", `${name}/Relu`, [x], [name]);
        shapeOf.set(name, s);
        tensorOf.set(name, name);
        break;
      }
      case "Dropout": {
        const { t: x } = src(layer);
        tensorOf.set(name, x);
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const { t: x, s } = src(layer);
        const ins = image(s, layer);
        const k = pair(cfg.pool_size, "pool_size");
        const st = pair(cfg.strides ?? cfg.pool_size, "strides");
        const { pads, outH, outW } = pads2d(String(cfg.padding), ins.h, ins.w, k, st);
        const attrs = [ints("kernel_shape", k), ints("strides", st), ints("pads", pads)];
        if (layer.class_name === "AveragePooling2D") {
          // Keras/TF 'same' average pooling divides by the number of real (unpadded) pixels.
          attrs.push(int("count_include_pad", 0));
          addNode("AveragePool", `${name}/AveragePool`, [x], [name], attrs);
        } else {
          addNode("MaxPool", `${name}/MaxPool`, [x], [name], attrs);
        }
        shapeOf.set(name, { kind: "image", c: ins.c, h: outH, w: outW });
        tensorOf.set(name, name);
        break;
      }
      case "Concatenate": {
        const n = inboundNames(layer).length;
        const ins = Array.from({ length: n }, (_, i) => src(layer, i));
        const first = image(ins[0]!.s, layer);
        const axis = cfg.axis ?? -1;
        if (axis !== 3 && axis !== -1)
          throw new Error(`Concatenate ${name}: only the channel axis is supported (got ${String(axis)})`);
        let c = 0;
        for (const i of ins) {
          const sh = image(i.s, layer);
          if (sh.h !== first.h || sh.w !== first.w) throw new Error(`Concatenate ${name}: spatial mismatch`);
          c += sh.c;
        }
        addNode(
          "Concat",
          `${name}/Concat`,
          ins.map((i) => i.t),
          [name],
          [int("axis", 1)],
        );
        shapeOf.set(name, { kind: "image", c, h: first.h, w: first.w });
        tensorOf.set(name, name);
        break;
      }
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D": {
        const { t: x, s } = src(layer);
        const ins = image(s, layer);
        const op = layer.class_name === "GlobalAveragePooling2D" ? "GlobalAveragePool" : "GlobalMaxPool";
        addNode(op, `${name}/${op}`, [x], [`${name}/pooled`]);
        addNode("Flatten", `${name}/Flatten`, [`${name}/pooled`], [name], [int("axis", 1)]);
        shapeOf.set(name, { kind: "flat", f: ins.c });
        tensorOf.set(name, name);
        break;
      }
      case "Flatten": {
        const { t: x, s } = src(layer);
        if (s.kind === "flat") {
          tensorOf.set(name, x);
          break;
        }
        let inp = x;
        if (s.h !== 1 || s.w !== 1) {
          // Keras flattens NHWC order: go back to NHWC first.
          addNode("Transpose", `${name}/to_nhwc`, [x], [`${name}/nhwc`], [ints("perm", [0, 2, 3, 1])]);
          inp = `${name}/nhwc`;
        }
        addNode("Flatten", `${name}/Flatten`, [inp], [name], [int("axis", 1)]);
        shapeOf.set(name, { kind: "flat", f: s.c * s.h * s.w });
        tensorOf.set(name, name);
        break;
      }
      case "Dense": {
        const { t: x, s } = src(layer);
        if (s.kind !== "flat") throw new Error(`Dense ${name}: needs a 2-D input`);
        const kern = w(`${name}/kernel`); // [in, units]
        const [fin, units] = kern.shape as [number, number];
        if (fin !== s.f) throw new Error(`Dense ${name}: kernel ${kern.shape} vs input ${s.f}`);
        const inputs = [x, addInit(`${name}/W`, [fin, units], kern.data)];
        if (cfg.use_bias !== false) inputs.push(addInit(`${name}/B`, [units], w(`${name}/bias`).data));
        addNode("Gemm", `${name}/Gemm`, inputs, [`${name}/linear`], [flt("alpha", 1), flt("beta", 1)]);
        const out = emitActivation(String(cfg.activation ?? "linear"), `${name}/linear`, name, name);
        shapeOf.set(out, { kind: "flat", f: units });
        tensorOf.set(name, out);
        break;
      }
      default:
        throw new Error(
          `layer ${name}: unsupported type ${layer.class_name} (supported: InputLayer, Conv2D, BatchNormalization, Activation, ReLU, ` +
            `MaxPooling2D, AveragePooling2D, Concatenate, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dropout, Dense)`,
        );
    }
    if (name === opts.cutLayer) {
      let t = tensorOf.get(name);
      if (t === undefined) throw new Error(`cut layer ${name} has no output tensor`);
      const s = shapeOf.get(t);
      if (!s) throw new Error(`no shape for ${t}`);
      if (s.kind === "image" && opts.flattenOutput) {
        addNode("Transpose", `${name}/out_nhwc`, [t], [`${name}/out_nhwc`], [ints("perm", [0, 2, 3, 1])]);
        addNode(
          "Flatten",
          `${name}/out_flatten`,
          [`${name}/out_nhwc`],
          [`${name}/out_flat`],
          [int("axis", 1)],
        );
        t = `${name}/out_flat`;
        outputShape = [s.c * s.h * s.w];
      } else {
        outputShape = s.kind === "flat" ? [s.f] : [s.c, s.h, s.w];
      }
      addNode("Identity", `${name}/output`, [t], [outputName]);
      break;
    }
  }
  if (!outputShape) throw new Error(`cut layer ${opts.cutLayer} not reached`);

  const firstInput = layers.find((l) => l.class_name === "InputLayer");
  const inShape = (firstInput?.config.batch_input_shape as number[]).slice(1);
  const vi = (name: string, dims: number[]): ValueInfoMsg => ({
    name,
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: [{ dim_param: "N" }, ...dims.map((d) => ({ dim_value: d }))] },
      },
    },
  });
  const model = {
    ir_version: 7,
    producer_name: "capflow",
    producer_version: opts.producerVersion ?? "0",
    model_version: 1,
    opset_import: [{ domain: "", version: opset }],
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: opts.graphName ?? "keras",
      node: nodes,
      initializer: inits,
      input: [vi(inputName, inShape)],
      output: [vi(outputName, outputShape)],
    },
  };
  const { ModelProto } = onnxSchema();
  const err = ModelProto.verify(model);
  if (err) throw new Error(`ONNX model does not verify: ${err}`);
  const bytes = ModelProto.encode(ModelProto.fromObject(model)).finish();
  return {
    bytes,
    nodeCount: nodes.length,
    initializerCount: inits.length,
    inputName,
    outputName,
    outputShape,
  };
}
