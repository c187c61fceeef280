// Pooling: MaxPooling2D, AveragePooling2D, and the global poolings (pooled, then flattened).
import { image, pads2d, pair, type LayerConverter } from "./graph.ts";
import { int, ints } from "../../onnx/onnx-schema.ts";

export const pooling2d: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const { t: x, s } = g.src(layer);
  const ins = image(s, layer);
  const k = pair(cfg.pool_size, "pool_size");
  const st = pair(cfg.strides ?? cfg.pool_size, "strides");
  const { pads, outH, outW } = pads2d(String(cfg.padding), ins.h, ins.w, k, st);
  const attrs = [ints("kernel_shape", k), ints("strides", st), ints("pads", pads)];
  if (layer.class_name === "AveragePooling2D") {
    // Keras/TF 'same' average pooling divides by the number of real (unpadded) pixels.
    attrs.push(int("count_include_pad", 0));
    g.addNode("AveragePool", `${name}/AveragePool`, [x], [name], attrs);
  } else {
    g.addNode("MaxPool", `${name}/MaxPool`, [x], [name], attrs);
  }
  g.output(name, name, { kind: "image", c: ins.c, h: outH, w: outW });
};

export const globalPooling2d: LayerConverter = (g, layer) => {
  const { name } = layer;
  const { t: x, s } = g.src(layer);
  const ins = image(s, layer);
  const op = layer.class_name === "GlobalAveragePooling2D" ? "GlobalAveragePool" : "GlobalMaxPool";
  g.addNode(op, `${name}/${op}`, [x], [`${name}/pooled`]);
  g.addNode("Flatten", `${name}/Flatten`, [`${name}/pooled`], [name], [int("axis", 1)]);
  g.output(name, name, { kind: "flat", f: ins.c });
};
