import { beforeAll, describe, expect, it } from "vitest";
import {
  loadTf,
  type Tf,
  createCaptionModel,
  decodeWeights,
  encodeWeights,
  type CaptionModel,
  type CaptionModelConfigInput,
  type CaptionSet,
  type OptimizerState,
} from "@capflow/ml";
import { evaluateLoss, shuffle, teacherBatches, trainEpoch } from "./train-epoch.ts";

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

const F = 12;
const config: CaptionModelConfigInput = {
  vocabSize: 16,
  maxLength: 9,
  featureDim: F,
  embedDim: 8,
  units: 16,
  seed: 3,
  learningRate: 0.01,
};

/** Six images, two captions each, over word ids 4..15. */
function syntheticSet(): CaptionSet {
  const width = 9;
  const rows: number[][] = [];
  const imageOf: number[] = [];
  for (let img = 0; img < 6; img++) {
    for (let k = 0; k < 2; k++) {
      const len = 3 + ((img + k) % 4);
      rows.push([1, ...Array.from({ length: len }, (_, j) => 4 + ((img * 3 + j * (k + 1)) % 12)), 2]);
      imageOf.push(img);
    }
  }
  const tokens = new Int32Array(rows.length * width);
  rows.forEach((r, i) => tokens.set(r, i * width));
  const features = new Float32Array(6 * F).map((_, i) => Math.sin(i * 0.77 + 0.3));
  return { features, featureDim: F, tokens, width, imageOf: Int32Array.from(imageOf) };
}

function maxDiff(a: CaptionModel, b: CaptionModel): number {
  const wb = b.getWeights();
  let m = 0;
  a.getWeights().forEach((w, i) =>
    w.data.forEach((v, j) => (m = Math.max(m, Math.abs(v - wb[i]!.data[j]!)))),
  );
  return m;
}

describe("trainEpoch", () => {
  it("shuffles deterministically per (seed, epoch)", () => {
    const xs = [...Array(20).keys()];
    expect(shuffle(xs, 1, 0)).toEqual(shuffle(xs, 1, 0));
    expect(shuffle(xs, 1, 0)).not.toEqual(shuffle(xs, 1, 1));
    expect(shuffle(xs, 1, 0)).not.toEqual(shuffle(xs, 2, 0));
    expect([...shuffle(xs, 1, 0)].sort((a, b) => a - b)).toEqual(xs);
  });

  it("buckets teacher-forcing batches by caption length and covers every caption once", () => {
    const set = syntheticSet();
    const batches = teacherBatches(set, [...Array(12).keys()], 4, 1, 0, true);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
  });

  for (const method of ["teacher", "prefix"] as const) {
    it(`overfits a tiny synthetic set with ${method} training and greedy decode reproduces a caption`, async () => {
      const set = syntheticSet();
      const model = createCaptionModel(tf, { ...config, dropout: 0 });
      const before = evaluateLoss(model, set);
      const epochs = method === "teacher" ? 120 : 40;
      for (let epoch = 0; epoch < epochs; epoch++)
        await trainEpoch(model, set, { method, batchSize: method === "teacher" ? 12 : 16, seed: 5, epoch });
      const after = evaluateLoss(model, set);
      expect(after).toBeLessThan(before * 0.35);
      // Image 0's greedy caption is one of its training captions.
      const { tokens } = model.greedyDecode(set.features.subarray(0, F), 1);
      const own = [0, 1].map((c) => Array.from(set.tokens.subarray(c * 9, c * 9 + 9)).filter((t) => t > 2));
      expect(own).toContainEqual(tokens[0]);
      model.dispose();
    });
  }

  it("save → load of weights and Adam state resumes exactly; without the optimizer state it does not", async () => {
    const set = syntheticSet();
    const opts = (epoch: number) => ({ method: "teacher" as const, batchSize: 4, seed: 9, epoch });
    const straight = createCaptionModel(tf, config);
    for (let e = 0; e < 4; e++) await trainEpoch(straight, set, opts(e));

    const first = createCaptionModel(tf, config);
    for (let e = 0; e < 2; e++) await trainEpoch(first, set, opts(e));
    // Through the on-disk form: one blob + JSON for weights, another for optimizer slots.
    const w = encodeWeights(first.getWeights());
    const o = await first.getOptimizerState();
    const slots = encodeWeights(o.slots);
    const saved = JSON.stringify({ w: w.specs, o: { ...o, slots: slots.specs } });
    first.dispose();

    const meta = JSON.parse(saved) as {
      w: typeof w.specs;
      o: Omit<OptimizerState, "slots"> & { slots: typeof slots.specs };
    };
    // The config (its seed drives the dropout masks) is part of the checkpoint too.
    const resumed = createCaptionModel(tf, config);
    resumed.setWeights(decodeWeights(meta.w, w.data));
    await resumed.setOptimizerState({ ...meta.o, slots: decodeWeights(meta.o.slots, slots.data) });
    for (let e = 2; e < 4; e++) await trainEpoch(resumed, set, opts(e));
    expect(maxDiff(resumed, straight)).toBe(0);

    const noOptimizer = createCaptionModel(tf, config);
    noOptimizer.setWeights(decodeWeights(meta.w, w.data));
    for (let e = 2; e < 4; e++) await trainEpoch(noOptimizer, set, opts(e));
    expect(maxDiff(noOptimizer, straight)).toBeGreaterThan(1e-3);
    [straight, resumed, noOptimizer].forEach((m) => m.dispose());
  });
});
