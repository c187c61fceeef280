// Keras (tfjs layers JSON config + weights) → ONNX ModelProto, written with protobufjs.
//
// The messages are declared in ../onnx/onnx-schema.ts; each layer family converts in its own module under
// keras-to-onnx/ (core, convolution, normalization, activation, pooling, merge). The graph takes NHWC float32 [N,H,W,C] (what Keras and
// our preprocessing produce), transposes once to NCHW (ONNX's conv layout) and runs NCHW from
// there; BatchNormalization that follows a Conv2D is folded into the conv's weights and bias.
//
// Supported layers: InputLayer, Conv2D (valid/same, strides, dilation, bias or not, linear/relu
// activation), BatchNormalization (folded, or standalone), Activation (relu/linear/sigmoid/tanh/
// softmax), MaxPooling2D, AveragePooling2D (same padding excludes the pad from the average, like
// TF: count_include_pad=0), Concatenate (channel axis), GlobalAveragePooling2D, Flatten, Dropout
// (identity), Dense. Conversion stops at `cutLayer`.
import type { KerasLayer } from "./nsfwjs-inception.ts";
import { DataType, encodeModel, int, ints, valueInfo } from "../onnx/onnx-schema.ts";
import { activation, relu } from "./keras-to-onnx/activation.ts";
import { conv2d } from "./keras-to-onnx/convolution.ts";
import { dense, dropout, flatten, inputLayer } from "./keras-to-onnx/core.ts";
import { OnnxGraph, type LayerConverter, type NamedWeights } from "./keras-to-onnx/graph.ts";
import { concatenate } from "./keras-to-onnx/merge.ts";
import { batchNormalization } from "./keras-to-onnx/normalization.ts";
import { globalPooling2d, pooling2d } from "./keras-to-onnx/pooling.ts";

export type { NamedWeights };

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

/** The converter of each supported Keras layer class. */
const CONVERTERS: Record<string, LayerConverter> = {
  InputLayer: inputLayer,
  Conv2D: conv2d,
  BatchNormalization: batchNormalization,
  Activation: activation,
  ReLU: relu,
  Dropout: dropout,
  MaxPooling2D: pooling2d,
  AveragePooling2D: pooling2d,
  Concatenate: concatenate,
  GlobalAveragePooling2D: globalPooling2d,
  GlobalMaxPooling2D: globalPooling2d,
  Flatten: flatten,
  Dense: dense,
};

/**
 * The graph output: the cut layer's tensor, flattened in Keras (NHWC) order if asked; returns its
 * shape without the batch dimension.
 */
function emitGraphOutput(g: OnnxGraph, name: string, outputName: string, flattenOutput: boolean): number[] {
  let t = g.tensorOf.get(name);
  if (t === undefined) throw new Error(`cut layer ${name} has no output tensor`);
  const s = g.shapeOf.get(t);
  if (!s) throw new Error(`no shape for ${t}`);
  let outputShape: number[];
  if (s.kind === "image" && flattenOutput) {
    g.addNode("Transpose", `${name}/out_nhwc`, [t], [`${name}/out_nhwc`], [ints("perm", [0, 2, 3, 1])]);
    g.addNode("Flatten", `${name}/out_flatten`, [`${name}/out_nhwc`], [`${name}/out_flat`], [int("axis", 1)]);
    t = `${name}/out_flat`;
    outputShape = [s.c * s.h * s.w];
  } else {
    outputShape = s.kind === "flat" ? [s.f] : [s.c, s.h, s.w];
  }
  g.addNode("Identity", `${name}/output`, [t], [outputName]);
  return outputShape;
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
  if (!layers.some((l) => l.name === opts.cutLayer))
    throw new Error(`cut layer '${opts.cutLayer}' not in model`);
  const g = new OnnxGraph(layers, weights, opts.cutLayer, inputName);
  const { nodes, inits } = g;
  let outputShape: number[] | undefined;

  for (const layer of layers) {
    const name = layer.name;
    const fmt = layer.config.data_format;
    if (fmt !== undefined && fmt !== "channels_last")
      throw new Error(`layer ${name}: data_format ${String(fmt)} unsupported`);
    const convert = Object.hasOwn(CONVERTERS, layer.class_name) ? CONVERTERS[layer.class_name] : undefined;
    if (!convert)
      throw new Error(
        `layer ${name}: unsupported type ${layer.class_name} (supported: InputLayer, Conv2D, BatchNormalization, Activation, ReLU, ` +
          `MaxPooling2D, AveragePooling2D, Concatenate, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dropout, Dense)`,
      );
    convert(g, layer);
    if (name === opts.cutLayer) {
      outputShape = emitGraphOutput(g, name, outputName, opts.flattenOutput === true);
      break;
    }
  }
  if (!outputShape) throw new Error(`cut layer ${opts.cutLayer} not reached`);

  const firstInput = layers.find((l) => l.class_name === "InputLayer");
  const inShape = (firstInput?.config.batch_input_shape as number[]).slice(1);
  const vi = (name: string, dims: number[]) => valueInfo(name, DataType.FLOAT, ["N", ...dims]);
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
  return {
    bytes: encodeModel(model),
    nodeCount: nodes.length,
    initializerCount: inits.length,
    inputName,
    outputName,
    outputShape,
  };
}
