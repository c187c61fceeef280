// Conv2D: HWIO kernel → OIHW, Keras padding → ONNX pads, a following BatchNormalization folded in.
import { emitActivation } from "./activation.ts";
import { image, pads2d, pair, type LayerConverter, type Shape } from "./graph.ts";
import { int, ints } from "../../onnx/onnx-schema.ts";
import { bnAffine, foldableBn } from "./normalization.ts";

export const conv2d: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const { t: x, s } = g.src(layer);
  const ins = image(s, layer);
  const k = pair(cfg.kernel_size, "kernel_size");
  const st = pair(cfg.strides ?? [1, 1], "strides");
  const dl = pair(cfg.dilation_rate ?? [1, 1], "dilation_rate");
  const kern = g.w(`${name}/kernel`); // [kh, kw, cin, cout]
  const [kh, kw, cin, cout] = kern.shape as [number, number, number, number];
  if (kh !== k[0] || kw !== k[1] || cin !== ins.c)
    throw new Error(`conv ${name}: kernel ${kern.shape} vs input channels ${ins.c}`);
  const bias = cfg.use_bias ? g.w(`${name}/bias`).data : undefined;
  const bn = foldableBn(g, layer);
  const aff = bn ? bnAffine(g, bn, cout) : undefined;
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
  const inputs = [x, g.addInit(`${name}/W`, [cout, cin, kh, kw], W)];
  if (B) inputs.push(g.addInit(`${name}/B`, [cout], B));
  const convOut = (bn ?? layer).name;
  g.addNode(
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
  const actOut = emitActivation(g, String(cfg.activation ?? "linear"), convOut, `${name}/act`, name);
  const shape: Shape = { kind: "image", c: cout, h: outH, w: outW };
  g.shapeOf.set(convOut, shape);
  g.output(name, actOut, shape);
  if (bn) {
    g.folded.add(bn.name);
    g.tensorOf.set(bn.name, convOut);
  }
};
