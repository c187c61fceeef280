// Activations: a layer's `activation` setting, and the Activation and ReLU layers.
import type { LayerConverter, OnnxGraph } from "./graph.ts";
import { int } from "../../onnx/onnx-schema.ts";

/** Adds the activation after `input` (none for linear); returns the tensor that holds the result. */
export function emitActivation(g: OnnxGraph, act: string, input: string, out: string, layer: string): string {
  switch (act) {
    case "linear":
      return input;
    case "relu":
    case "sigmoid":
    case "tanh": {
      const op = { relu: "Relu", sigmoid: "Sigmoid", tanh: "Tanh" }[act];
      g.addNode(op, `${layer}/${op}`, [input], [out]);
      return out;
    }
    case "softmax":
      g.addNode("Softmax", `${layer}/Softmax`, [input], [out], [int("axis", -1)]);
      return out;
    default:
      throw new Error(
        `layer ${layer}: unsupported activation '${act}' (linear, relu, sigmoid, tanh, softmax)`,
      );
  }
}

export const activation: LayerConverter = (g, layer) => {
  const { t: x, s } = g.src(layer);
  const out = emitActivation(g, String(layer.config.activation), x, layer.name, layer.name);
  g.output(layer.name, out, s);
};

export const relu: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const { t: x, s } = g.src(layer);
  if (cfg.max_value != null || (typeof cfg.negative_slope === "number" && cfg.negative_slope !== 0))
    throw new Error(`ReLU ${name}: max_value/negative_slope unsupported`);
  g.addNode("Relu", `${name}/Relu`, [x], [name]);
  g.output(name, name, s);
};
