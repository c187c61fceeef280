import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { calibrate } from "./calibrate.ts";
import { rowCosines, summariseCosines } from "./cosine-stats.ts";
import { decodeModel } from "../onnx/onnx-schema.ts";
import { quantiseModel, quantiseWeightsPerChannel, uint8Params } from "./int8-quantise.ts";
import type { KerasLayer } from "./nsfwjs-inception.ts";
import { kerasToOnnx, type NamedWeights } from "./onnx-export.ts";
import { xorshift } from "./xorshift.ts";

// A small Inception-like block with the layer kinds InceptionV3 uses: conv+BN+relu, two branches
// (1×1, and 3×3 after a max pool), a same-padded average pool, a concat, and the global pool the
// feature is taken after. 24×24×3 input, random weights from a fixed seed.
const H = 24;

const inbound = (...names: string[]): unknown[] => [names.map((n) => [n, 0, 0, {}])];
const conv = (name: string, from: string, k: number, filters: number, strides = 1): KerasLayer => ({
  name,
  class_name: "Conv2D",
  config: { kernel_size: [k, k], strides: [strides, strides], padding: "same", use_bias: false, filters },
  inbound_nodes: inbound(from),
});
const bn = (name: string, from: string): KerasLayer => ({
  name,
  class_name: "BatchNormalization",
  config: { axis: 3, epsilon: 1e-3, scale: false },
  inbound_nodes: inbound(from),
});
/** A same-padded 3×3 pool with stride 1, as in InceptionV3's branches. */
const pool3x3 = (name: string, kind: "MaxPooling2D" | "AveragePooling2D", from: string): KerasLayer => ({
  name,
  class_name: kind,
  config: { pool_size: [3, 3], strides: [1, 1], padding: "same" },
  inbound_nodes: inbound(from),
});
const relu = (name: string, from: string): KerasLayer => ({
  name,
  class_name: "Activation",
  config: { activation: "relu" },
  inbound_nodes: inbound(from),
});

function smallGraph(): { layers: KerasLayer[]; weights: NamedWeights } {
  const layers: KerasLayer[] = [
    {
      name: "in",
      class_name: "InputLayer",
      config: { batch_input_shape: [null, H, H, 3] },
      inbound_nodes: [],
    },
    conv("c1", "in", 3, 16, 2),
    bn("b1", "c1"),
    relu("r1", "b1"),
    conv("c2", "r1", 1, 8),
    bn("b2", "c2"),
    relu("r2", "b2"),
    pool3x3("mp", "MaxPooling2D", "r1"),
    conv("c3", "mp", 3, 12),
    bn("b3", "c3"),
    relu("r3", "b3"),
    pool3x3("ap", "AveragePooling2D", "r1"),
    conv("c4", "ap", 1, 4),
    bn("b4", "c4"),
    relu("r4", "b4"),
    {
      name: "cat",
      class_name: "Concatenate",
      config: { axis: -1 },
      inbound_nodes: inbound("r2", "r3", "r4"),
    },
    { name: "gap", class_name: "GlobalAveragePooling2D", config: {}, inbound_nodes: inbound("cat") },
  ];
  const r = xorshift(42);
  const weights: NamedWeights = new Map();
  const put = (name: string, shape: number[], f: () => number): void => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(f);
    weights.set(name, { shape, data });
  };
  for (const l of layers) {
    if (l.class_name === "Conv2D") {
      const cin = l.name === "c1" ? 3 : l.name === "c2" || l.name === "c4" ? 16 : 16;
      const [k] = l.config.kernel_size as number[];
      const cout = l.config.filters as number;
      put(`${l.name}/kernel`, [k!, k!, cin, cout], () => (r() - 0.5) * (2 / Math.sqrt(k! * k! * cin)));
    }
    if (l.class_name === "BatchNormalization") {
      const c = weights.get(`c${l.name.slice(1)}/kernel`)!.shape[3]!;
      put(`${l.name}/beta`, [c], () => (r() - 0.5) * 0.2);
      put(`${l.name}/moving_mean`, [c], () => (r() - 0.5) * 0.1);
      put(`${l.name}/moving_variance`, [c], () => 0.5 + r());
    }
  }
  return { layers, weights };
}

function images(n: number, seed: number): Float32Array[] {
  const r = xorshift(seed);
  // Smooth images, not white noise: gradients plus a little noise, in [-1, 1] like Inception inputs.
  return Array.from({ length: n }, () => {
    const a = r() * 2 - 1;
    const b = r() * 2 - 1;
    const x = new Float32Array(H * H * 3);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < H; j++)
        for (let c = 0; c < 3; c++)
          x[(i * H + j) * 3 + c] = Math.max(-1, Math.min(1, a * (i / H) + b * (j / H) + (r() - 0.5) * 0.3));
    return x;
  });
}

async function runModel(bytes: Uint8Array, xs: Float32Array[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: "all" });
  try {
    const x = new Float32Array(xs.length * H * H * 3);
    xs.forEach((im, i) => x.set(im, i * im.length));
    const out = await s.run({ input: new ort.Tensor("float32", x, [xs.length, H, H, 3]) });
    return (out.features!.data as Float32Array).slice();
  } finally {
    await s.release();
  }
}

describe("int8 quantiser", () => {
  const { layers, weights } = smallGraph();
  const fp32 = kerasToOnnx(layers, weights, { cutLayer: "gap" }).bytes;

  it("quantises weights per output channel, symmetric, within half a step", () => {
    const w = Float32Array.from([0.5, -0.25, 0.1, 0, 8, -2, 4, 1]);
    const { q, scales } = quantiseWeightsPerChannel(w, 2);
    expect([...scales]).toEqual([Math.fround(0.5 / 127), Math.fround(8 / 127)]);
    expect(q[0]).toBe(127);
    expect(q[4]).toBe(127);
    for (let i = 0; i < w.length; i++)
      expect(Math.abs(q[i]! * scales[i < 4 ? 0 : 1]! - w[i]!)).toBeLessThanOrEqual(
        scales[i < 4 ? 0 : 1]! / 2 + 1e-9,
      );
  });

  it("gives activations uint8 parameters that hold zero exactly", () => {
    const r = uint8Params({ min: 0, max: 2.55 });
    expect(r.scale).toBeCloseTo(0.01, 12);
    expect(r.zeroPoint).toBe(0);
    const p = uint8Params({ min: -1, max: 1 });
    expect(p.zeroPoint).toBe(128);
    expect(uint8Params({ min: 0.5, max: 1 }).zeroPoint).toBe(0); // widened down to 0
  });

  const distance = async (q: Uint8Array): Promise<{ minCos: number; relErr: number }> => {
    // Held-out inputs, not the calibration ones.
    const held = images(16, 2);
    const f = await runModel(fp32, held);
    const g = await runModel(q, held);
    const cos = summariseCosines(rowCosines(f, g, f.length / held.length));
    let maxAbs = 0;
    let maxErr = 0;
    for (let i = 0; i < f.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(f[i]!));
      maxErr = Math.max(maxErr, Math.abs(f[i]! - g[i]!));
    }
    return { minCos: cos.min, relErr: maxErr / maxAbs };
  };

  for (const format of ["qdq", "conv-integer"] as const) {
    it(`${format}: outputs on ONNX Runtime stay within tolerance of fp32 (cosine ≥ 0.999 per image, max error ≤ 3% of the largest output)`, async () => {
      const ranges = await calibrate(fp32, images(8, 1), {
        inputName: "input",
        threads: 1,
        imageDims: [H, H, 3],
      });
      const q = quantiseModel(fp32, ranges, { format, metadata: { encoder_id: "small-int8" } });
      expect(q.convs).toBe(4);
      const ops = decodeModel(q.bytes).graph.node.map((n) => n.op_type);
      if (format === "qdq") {
        expect(ops).toContain("QuantizeLinear");
        expect(ops.filter((o) => o === "Conv")).toHaveLength(4); // each behind DequantizeLinear inputs
      } else {
        expect(ops.filter((o) => o === "ConvInteger")).toHaveLength(4);
        expect(ops).not.toContain("Conv");
      }
      const d = await distance(q.bytes);
      expect(d.minCos).toBeGreaterThanOrEqual(0.999);
      expect(d.relErr).toBeLessThanOrEqual(0.03);
    });
  }

  it("the tolerance catches a bad calibration (ranges cut to a tenth clip the activations)", async () => {
    const ranges = await calibrate(fp32, images(8, 1), {
      inputName: "input",
      threads: 1,
      imageDims: [H, H, 3],
    });
    const cut = new Map([...ranges].map(([t, r]) => [t, { min: r.min / 10, max: r.max / 10 }]));
    const d = await distance(quantiseModel(fp32, cut).bytes);
    expect(d.minCos < 0.999 || d.relErr > 0.03).toBe(true);
  });

  it("fails loudly when a quantised tensor has no calibration range", () => {
    expect(() => quantiseModel(fp32, new Map())).toThrow(/no calibration range/);
  });
});
