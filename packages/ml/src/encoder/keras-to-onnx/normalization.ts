// BatchNormalization: folded into the Conv2D before it where it can be, else an affine Mul + Add.
import type { KerasLayer } from "../nsfwjs-inception.ts";
import { image, inboundNames, type LayerConverter, type OnnxGraph } from "./graph.ts";

/** The BatchNormalization layer that can be folded into `conv` (its only consumer), if any. */
export function foldableBn(g: OnnxGraph, conv: KerasLayer): KerasLayer | undefined {
  if ((conv.config.activation ?? "linear") !== "linear") return undefined;
  if ((g.consumers.get(conv.name) ?? 0) !== 1 || conv.name === g.cutLayer) return undefined;
  const bn = g.layers.find((l) => l.class_name === "BatchNormalization" && inboundNames(l)[0] === conv.name);
  if (!bn) return undefined;
  const axis = bn.config.axis;
  if (axis !== 3 && axis !== -1) return undefined;
  return bn;
}

/** Per-channel (scale, shift) of a Keras BN layer: y = x*scale + shift. */
export function bnAffine(
  g: OnnxGraph,
  bn: KerasLayer,
  channels: number,
): { scale: Float64Array; shift: Float64Array } {
  const eps = typeof bn.config.epsilon === "number" ? bn.config.epsilon : 1e-3;
  const mean = g.w(`${bn.name}/moving_mean`).data;
  const variance = g.w(`${bn.name}/moving_variance`).data;
  const gamma = bn.config.scale === false ? undefined : g.w(`${bn.name}/gamma`).data;
  const beta = bn.config.center === false ? undefined : g.w(`${bn.name}/beta`).data;
  if (mean.length !== channels)
    throw new Error(`BN ${bn.name}: ${mean.length} channels, expected ${channels}`);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + eps);
    shift[c] = (beta ? beta[c]! : 0) - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

export const batchNormalization: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  if (g.folded.has(name)) return;
  const { t: x, s } = g.src(layer);
  const ins = image(s, layer);
  if (cfg.axis !== 3 && cfg.axis !== -1) throw new Error(`BN ${name}: axis ${String(cfg.axis)} unsupported`);
  const { scale, shift } = bnAffine(g, layer, ins.c);
  // Standalone BN as an affine map: x * scale + shift, with [C,1,1] constants.
  const sc = g.addInit(`${name}/scale`, [ins.c, 1, 1], Float32Array.from(scale));
  const sh = g.addInit(`${name}/shift`, [ins.c, 1, 1], Float32Array.from(shift));
  g.addNode("Mul", `${name}/Mul`, [x, sc], [`${name}/mul`]);
  g.addNode("Add", `${name}/Add`, [`${name}/mul`, sh], [name]);
  g.output(name, name, s);
};
