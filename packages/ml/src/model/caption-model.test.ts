import { beforeAll, describe, expect, it } from "vitest";
import { loadTf, type Tf } from "../compute/backend.ts";
import { prefixBatch, prefixSamples, teacherBatch } from "./batches.ts";
import { createCaptionModel } from "./caption-model.ts";
import { bannedTokens } from "./decode-search.ts";
import { small, tinySet } from "./test-fixtures.ts";
import { decodeWeights, encodeWeights } from "./weights-io.ts";

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

describe("caption model", () => {
  it("teacher forcing and the prefix method compute the same loss on the same captions", () => {
    const model = createCaptionModel(tf, small);
    const set = tinySet();
    const all = [0, 1, 2, 3];
    const a = model.evaluate(teacherBatch(set, all));
    const b = model.evaluate(prefixBatch(set, prefixSamples(set, all), 8));
    expect(a.count).toBe(b.count);
    expect(a.loss).toBeCloseTo(b.loss, 5);
    model.dispose();
  });

  it("the step decoder gives the padded model's next-word distribution", () => {
    const model = createCaptionModel(tf, small);
    const set = tinySet();
    const feats = set.features.subarray(0, 16);
    const greedy = model.greedyDecode(feats, 1, { maxLength: 6 });
    // Re-score the greedy tokens with the pre-padded prefix model, one prefix at a time.
    const emitted = greedy.tokens[0]!;
    const endedWithEnd = emitted.length < 5; // maxLength 6 leaves room for 5 tokens
    const seq = [1, ...emitted, ...(endedWithEnd ? [2] : [])];
    let total = 0;
    for (let t = 1; t < seq.length; t++) {
      const logp = model.nextWordLogProbs(feats, [seq.slice(0, t)]);
      // Greedy takes the best token the decoding rules allow (no <end> first, no triple repeat).
      const banned = bannedTokens(
        { vocabSize: logp.length, startId: 1, endId: 2, maxLength: 6 },
        seq.slice(1, t),
      );
      const allowed = logp.map((v, k) => (banned.includes(k) ? -Infinity : v));
      const best = allowed.indexOf(Math.max(...allowed));
      expect(best).toBe(seq[t]);
      total += logp[seq[t]!]!;
    }
    expect(greedy.logProbs[0]).toBeCloseTo(total, 4);
    model.dispose();
  });

  it("uses sigmoid gates and deterministic init: same seed → same weights, other seed → different", () => {
    const a = createCaptionModel(tf, small);
    const b = createCaptionModel(tf, small);
    const c = createCaptionModel(tf, { ...small, seed: 8 });
    const wa = a.getWeights();
    expect(wa.map((w) => w.name)).toContain("lstm/recurrent_kernel");
    wa.forEach((w, i) => expect(Array.from(w.data)).toEqual(Array.from(b.getWeights()[i]!.data)));
    expect(Array.from(c.getWeights()[0]!.data)).not.toEqual(Array.from(wa[0]!.data));
    [a, b, c].forEach((m) => m.dispose());
  });

  it.each(["tutorial", "residual"] as const)(
    "learns a tiny set (%s merge), greedy decode reproduces its captions, beam search agrees",
    (merge) => {
      const model = createCaptionModel(tf, { ...small, merge, dropout: 0, learningRate: 0.01 });
      const set = tinySet();
      const batch = teacherBatch(set, [0, 1, 2]);
      const first = model.trainBatch(batch);
      let last = first;
      for (let i = 0; i < 150; i++) last = model.trainBatch(batch);
      expect(last).toBeLessThan(first * 0.1);
      const feats = new Float32Array(3 * 16);
      feats.set(set.features);
      const { tokens } = model.greedyDecode(feats, 3);
      expect(tokens).toEqual([
        [4, 5, 6],
        [7, 8],
        [9, 10, 11, 4],
      ]);
      const beams = model.beamSearch(set.features.subarray(16, 32), { width: 3 });
      expect(beams[0]!.tokens).toEqual([7, 8]);
      expect(beams.length).toBeGreaterThan(0);
      model.dispose();
    },
  );

  it("the residual merge is another function of the same weights: linear image path, skip around the relu layer", () => {
    const tutorial = createCaptionModel(tf, small);
    const residual = createCaptionModel(tf, { ...small, merge: "residual" });
    expect(residual.getWeights().map((w) => [w.name, w.shape])).toEqual(
      tutorial.getWeights().map((w) => [w.name, w.shape]),
    );
    residual.setWeights(tutorial.getWeights());
    const feats = tinySet().features.subarray(0, 16);
    const a = tutorial.nextWordLogProbs(feats, [[1]]);
    const b = residual.nextWordLogProbs(feats, [[1]]);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
    // First step by hand from the weights: s = h1 + image, logits = (s + relu(s·D + d))·O + o.
    const w = Object.fromEntries(residual.getWeights().map((x) => [x.name, x]));
    const U = small.units!;
    const dense = (x: ArrayLike<number>, k: { data: Float32Array; shape: number[] }, bias: Float32Array) =>
      Array.from({ length: k.shape[1]! }, (_, j) => {
        let sum = bias[j]!;
        for (let i = 0; i < k.shape[0]!; i++) sum += x[i]! * k.data[i * k.shape[1]! + j]!;
        return sum;
      });
    const image = dense(feats, w["image/kernel"]!, w["image/bias"]!.data);
    const xw = dense(
      w["embedding/embeddings"]!.data.subarray(1 * small.embedDim!, 2 * small.embedDim!),
      w["lstm/kernel"]!,
      w["lstm/bias"]!.data,
    );
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const h = Array.from(
      { length: U },
      (_, j) => sig(xw[3 * U + j]!) * Math.tanh(sig(xw[j]!) * Math.tanh(xw[2 * U + j]!)),
    );
    const merged = h.map((v, j) => v + image[j]!);
    const hidden = dense(merged, w["decoder/kernel"]!, w["decoder/bias"]!.data).map(
      (v, j) => Math.max(v, 0) + merged[j]!,
    );
    const logits = dense(hidden, w["output/kernel"]!, w["output/bias"]!.data);
    const lse = Math.log(logits.reduce((acc, v) => acc + Math.exp(v), 0));
    logits.forEach((v, i) => expect(b[i]!).toBeCloseTo(v - lse, 4));
    [tutorial, residual].forEach((m) => m.dispose());
  });

  it("does not leak tensors across train, evaluate and decode", () => {
    const model = createCaptionModel(tf, small);
    const set = tinySet();
    model.trainBatch(teacherBatch(set, [0, 1]));
    const before = tf.memory().numTensors;
    model.trainBatch(teacherBatch(set, [0, 1]));
    model.trainBatch(prefixBatch(set, prefixSamples(set, [2]), 8));
    model.evaluate(teacherBatch(set, [3]));
    model.greedyDecode(set.features, 3);
    model.beamSearch(set.features.subarray(0, 16), { width: 2, lengthPenalty: 0.7 });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it("round-trips weights through one binary blob + JSON specs", () => {
    const a = createCaptionModel(tf, small);
    const { specs, data } = encodeWeights(a.getWeights());
    const b = createCaptionModel(tf, { ...small, seed: 99 });
    b.setWeights(decodeWeights(JSON.parse(JSON.stringify(specs)), data));
    b.getWeights().forEach((w, i) => expect(Array.from(w.data)).toEqual(Array.from(a.getWeights()[i]!.data)));
    [a, b].forEach((m) => m.dispose());
  });

  it("keeps pretrained word vectors frozen, and saves them with the weights", async () => {
    const emb = new Float32Array(12 * 8).map((_, i) => Math.cos(i));
    const model = createCaptionModel(tf, { ...small, pretrainedEmbeddings: emb });
    model.trainBatch(teacherBatch(tinySet(), [0, 1]));
    const saved = model.getWeights().find((w) => w.name === "embedding/embeddings");
    expect(Array.from(saved!.data)).toEqual(Array.from(emb));
    // Not trained: Adam keeps no moments for it.
    expect((await model.getOptimizerState()).slots.map((s) => s.name)).not.toContain(
      "embedding/embeddings/m",
    );
    // A model built without the vectors (the caption worker's) gets them from the weights.
    const served = createCaptionModel(tf, small);
    served.setWeights(model.getWeights());
    expect(Array.from(served.getWeights().find((w) => w.name === "embedding/embeddings")!.data)).toEqual(
      Array.from(emb),
    );
    [model, served].forEach((m) => m.dispose());
  });

  it("rejects a bad config naming the field", () => {
    expect(() => createCaptionModel(tf, { ...small, vocabSize: 2 })).toThrow(/vocabSize/);
  });
});
