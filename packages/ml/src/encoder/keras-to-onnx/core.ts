// Core layers: InputLayer (NHWC in, NCHW from here on), Dropout (identity), Flatten, Dense.
import { emitActivation } from "./activation.ts";
import type { LayerConverter } from "./graph.ts";
import { flt, int, ints } from "../../onnx/onnx-schema.ts";

export const inputLayer: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const shape = (cfg.batch_input_shape ?? cfg.batchInputShape) as (number | null)[] | undefined;
  if (!shape || shape.length !== 4) throw new Error(`input ${name}: need a 4-D batch_input_shape`);
  const [, h, wd, c] = shape;
  if (typeof h !== "number" || typeof wd !== "number" || typeof c !== "number")
    throw new Error(`input ${name}: H, W, C must be static`);
  const t = `${name}/nchw`;
  g.addNode("Transpose", `${name}/to_nchw`, [g.inputName], [t], [ints("perm", [0, 3, 1, 2])]);
  g.output(name, t, { kind: "image", c, h, w: wd });
};

export const dropout: LayerConverter = (g, layer) => {
  g.output(layer.name, g.src(layer).t);
};

export const flatten: LayerConverter = (g, layer) => {
  const { name } = layer;
  const { t: x, s } = g.src(layer);
  if (s.kind === "flat") {
    g.output(name, x);
    return;
  }
  let inp = x;
  if (s.h !== 1 || s.w !== 1) {
    // Keras flattens NHWC order: go back to NHWC first.
    g.addNode("Transpose", `${name}/to_nhwc`, [x], [`${name}/nhwc`], [ints("perm", [0, 2, 3, 1])]);
    inp = `${name}/nhwc`;
  }
  g.addNode("Flatten", `${name}/Flatten`, [inp], [name], [int("axis", 1)]);
  g.output(name, name, { kind: "flat", f: s.c * s.h * s.w });
};

export const dense: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const { t: x, s } = g.src(layer);
  if (s.kind !== "flat") throw new Error(`Dense ${name}: needs a 2-D input`);
  const kern = g.w(`${name}/kernel`); // [in, units]
  const [fin, units] = kern.shape as [number, number];
  if (fin !== s.f) throw new Error(`Dense ${name}: kernel ${kern.shape} vs input ${s.f}`);
  const inputs = [x, g.addInit(`${name}/W`, [fin, units], kern.data)];
  if (cfg.use_bias !== false) inputs.push(g.addInit(`${name}/B`, [units], g.w(`${name}/bias`).data));
  g.addNode("Gemm", `${name}/Gemm`, inputs, [`${name}/linear`], [flt("alpha", 1), flt("beta", 1)]);
  const out = emitActivation(g, String(cfg.activation ?? "linear"), `${name}/linear`, name, name);
  g.output(name, out, { kind: "flat", f: units });
};
