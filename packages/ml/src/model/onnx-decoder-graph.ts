/**
 * The caption model's inference graphs written as ONNX (with ../onnx/onnx-schema.ts's builders):
 *
 *   image:  features [N, F] → Gemm(image/kernel, image/bias) → Relu (tutorial merge only) → image [N, U]
 *   step:   tokens int64 [N] → Gather(embeddings) → Gemm(lstm/kernel, lstm/bias) ─┐
 *           h [N, U] → MatMul(lstm/recurrent_kernel) ─────────────────────────────┴─ Add → Split 4 (i, f, c, o)
 *           c2 = σ(f)·c + σ(i)·tanh(g), h2 = σ(o)·tanh(c2)
 *           s = h2 + image [N, U] → Gemm(decoder) → Relu (→ + s, residual merge) → Gemm(output)
 *           → LogSoftmax → logprobs [N, V]
 *           → ArgMax (first max, as the tfjs search; <pad> and <start> excluded) → best int64 [N];
 *           ReduceMax → best_logprob [N]
 *
 * Keras LSTM semantics, exactly those of caption-model.ts: gate order i, f, c, o and sigmoid gates.
 */
import {
  DataType,
  encodeModel,
  floatTensor,
  int,
  ints,
  node,
  valueInfo,
  type AttrMsg,
  type NodeMsg,
  type TensorMsg,
  type ValueInfoMsg,
} from "../onnx/onnx-schema.ts";
import type { CaptionModelConfig, NamedWeight } from "./caption-model.ts";

export const STEP_INPUTS = { tokens: "tokens", h: "h", c: "c", image: "image" } as const;
export const STEP_OUTPUTS = {
  h: "h2",
  c: "c2",
  best: "best",
  bestLogProb: "best_logprob",
  logProbs: "logprobs",
} as const;
export const IMAGE_INPUT = "features";
export const IMAGE_OUTPUT = "image";

const { FLOAT, INT64 } = DataType;
const OPSET = 13;

/** Graph assembly: initializers from the model's weights, nodes in order, typed inputs and outputs. */
class GraphBuilder {
  readonly nodes: NodeMsg[] = [];
  private readonly inits: TensorMsg[] = [];
  private readonly byName: Map<string, NamedWeight>;

  constructor(weights: NamedWeight[]) {
    this.byName = new Map(weights.map((w) => [w.name, w]));
  }

  /** The weight `name` as an initializer, checked against the shape the config implies. */
  weight(name: string, shape: number[]): string {
    const w = this.byName.get(name);
    if (!w) throw new Error(`caption decoder: missing weight ${name}`);
    if (w.shape.join("x") !== shape.join("x") || w.data.length !== shape.reduce((a, b) => a * b, 1))
      throw new Error(`caption decoder: ${name} has shape [${w.shape}], the config implies [${shape}]`);
    return this.constant(name, shape, w.data);
  }

  /** A float initializer that is not one of the model's weights. */
  constant(name: string, shape: number[], d: Float32Array): string {
    this.inits.push(floatTensor(name, shape, d));
    return name;
  }

  node(op: string, input: string[], output: string | string[], attribute: AttrMsg[] = []): string {
    const outs = typeof output === "string" ? [output] : output;
    this.nodes.push(node(op, `${op}_${this.nodes.length}`, input, outs, attribute));
    return outs[0]!;
  }

  bytes(name: string, inputs: ValueInfoMsg[], outputs: ValueInfoMsg[]): Uint8Array {
    return encodeModel({
      ir_version: 8,
      producer_name: "capflow",
      opset_import: [{ domain: "", version: OPSET }],
      graph: { name, node: this.nodes, initializer: this.inits, input: inputs, output: outputs },
    });
  }
}

/** features [N, F] → features · image/kernel + image/bias [N, U], then relu for the tutorial merge. */
export function imageGraph(config: CaptionModelConfig, weights: NamedWeight[]): Uint8Array {
  const { featureDim: F, units: U } = config;
  const g = new GraphBuilder(weights);
  const tutorial = config.merge === "tutorial";
  const proj = g.node(
    "Gemm",
    [IMAGE_INPUT, g.weight("image/kernel", [F, U]), g.weight("image/bias", [U])],
    tutorial ? "image_linear" : IMAGE_OUTPUT,
  );
  if (tutorial) g.node("Relu", [proj], IMAGE_OUTPUT);
  return g.bytes(
    "capflow_caption_image",
    [valueInfo(IMAGE_INPUT, FLOAT, ["N", F])],
    [valueInfo(IMAGE_OUTPUT, FLOAT, ["N", U])],
  );
}

/** One decoder step: (tokens, h, c, image) → (h2, c2, best, best_logprob, logprobs). */
export function stepGraph(config: CaptionModelConfig, weights: NamedWeight[]): Uint8Array {
  const { vocabSize: V, embedDim: E, units: U } = config;
  const I = STEP_INPUTS;
  const O = STEP_OUTPUTS;
  const g = new GraphBuilder(weights);
  const x = g.node("Gather", [g.weight("embedding/embeddings", [V, E]), I.tokens], "x", [int("axis", 0)]);
  const xw = g.node("Gemm", [x, g.weight("lstm/kernel", [E, 4 * U]), g.weight("lstm/bias", [4 * U])], "xw");
  const hr = g.node("MatMul", [I.h, g.weight("lstm/recurrent_kernel", [U, 4 * U])], "hr");
  const z = g.node("Add", [xw, hr], "z");
  g.node("Split", [z], ["zi", "zf", "zg", "zo"], [int("axis", 1)]);
  const i = g.node("Sigmoid", ["zi"], "gate_i");
  const f = g.node("Sigmoid", ["zf"], "gate_f");
  const cand = g.node("Tanh", ["zg"], "gate_c");
  const o = g.node("Sigmoid", ["zo"], "gate_o");
  const c2 = g.node("Add", [g.node("Mul", [f, I.c], "fc"), g.node("Mul", [i, cand], "ic")], O.c);
  g.node("Mul", [o, g.node("Tanh", [c2], "tanh_c2")], O.h);
  const merged = g.node("Add", [O.h, I.image], "merged");
  const dense = g.node(
    "Relu",
    [g.node("Gemm", [merged, g.weight("decoder/kernel", [U, U]), g.weight("decoder/bias", [U])], "dec")],
    "dense",
  );
  const hidden = config.merge === "tutorial" ? dense : g.node("Add", [merged, dense], "hidden");
  const logits = g.node(
    "Gemm",
    [hidden, g.weight("output/kernel", [U, V]), g.weight("output/bias", [V])],
    "logits",
  );
  g.node("LogSoftmax", [logits], O.logProbs, [int("axis", 1)]);
  // `best` is the best token a caption may hold: never <pad> or <start> (decode-search.ts's rules), so
  // a greedy step that fetches only `best` cannot be handed one of them. logprobs stay the model's own.
  const never = new Float32Array(V);
  never[0] = never[config.startId] = -1e9;
  const emittable = g.node("Add", [O.logProbs, g.constant("never_emitted", [V], never)], "emittable");
  g.node("ArgMax", [emittable], O.best, [int("axis", 1), int("keepdims", 0), int("select_last_index", 0)]);
  g.node("ReduceMax", [emittable], O.bestLogProb, [ints("axes", [1]), int("keepdims", 0)]);
  return g.bytes(
    "capflow_caption_step",
    [
      valueInfo(I.tokens, INT64, ["N"]),
      valueInfo(I.h, FLOAT, ["N", U]),
      valueInfo(I.c, FLOAT, ["N", U]),
      valueInfo(I.image, FLOAT, ["N", U]),
    ],
    [
      valueInfo(O.h, FLOAT, ["N", U]),
      valueInfo(O.c, FLOAT, ["N", U]),
      valueInfo(O.best, INT64, ["N"]),
      valueInfo(O.bestLogProb, FLOAT, ["N"]),
      valueInfo(O.logProbs, FLOAT, ["N", V]),
    ],
  );
}
