// Merging layers: Concatenate on the channel axis.
import { image, inboundNames, type LayerConverter } from "./graph.ts";
import { int } from "../../onnx/onnx-schema.ts";

export const concatenate: LayerConverter = (g, layer) => {
  const { name, config: cfg } = layer;
  const n = inboundNames(layer).length;
  const ins = Array.from({ length: n }, (_, i) => g.src(layer, i));
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
  g.addNode(
    "Concat",
    `${name}/Concat`,
    ins.map((i) => i.t),
    [name],
    [int("axis", 1)],
  );
  g.output(name, name, { kind: "image", c, h: first.h, w: first.w });
};
