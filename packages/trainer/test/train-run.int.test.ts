import { beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { type ObjectStore } from "@capflow/common";
import { loadTf, type Tf } from "@capflow/ml";
import { evaluateModel, latestCheckpoint, scanShards, trainRun, type TrainingSpec } from "@capflow/trainer";
import { localStore } from "../../../test/support/services.ts";
import { preparePublishedModel } from "../../../test/support/pipeline.ts";

// Runs over real features of real images (the real encoder), in a real local store.
describe("training runs", () => {
  let store: ObjectStore;
  let tf: Tf;
  let encoderId: string;
  const log = pino({ level: "silent" });
  const spec = (runId: string, epochs: number, extra: Partial<TrainingSpec> = {}): TrainingSpec => ({
    runId,
    dataset: "drawn",
    encoderId,
    method: "teacher-forcing",
    epochs,
    seed: 7,
    batchSize: 16,
    learningRate: 0.01,
    minWordCount: 1,
    model: { embedDim: 8, units: 16, dropout: 0.3 },
    beamWidth: 2,
    ...extra,
  });

  beforeAll(async () => {
    store = await localStore();
    const prepared = await preparePublishedModel(store, { images: 24, epochs: 1, runId: "warm-up" });
    encoderId = prepared.encoder.id;
    tf = (await loadTf()).tf;
  });

  it("resumed after a stop between epochs, ends with the weights of an uninterrupted run", async () => {
    await trainRun({ store, tf, log }, spec("straight", 3));
    const first = await trainRun({ store, tf, log }, spec("interrupted", 1));
    expect(first.resumedFrom).toBe(0);
    const resumed = await trainRun({ store, tf, log }, spec("interrupted", 3));
    expect(resumed.resumedFrom).toBe(1);
    const a = await latestCheckpoint(store, "straight");
    const b = await latestCheckpoint(store, "interrupted");
    expect(b?.epoch).toBe(3);
    expect(b!.optimizer.iterations).toBe(a!.optimizer.iterations);
    for (const [i, w] of a!.weights.entries()) {
      const other = b!.weights[i]!;
      expect(other.name).toBe(w.name);
      let maxDiff = 0;
      w.data.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(v - other.data[k]!))));
      expect(maxDiff, w.name).toBeLessThan(1e-5);
    }
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
  });

  it("trains the residual merge by default, and a resumed run keeps the merge its checkpoint was trained as", async () => {
    await trainRun({ store, tf, log }, spec("merge-default", 1));
    expect((await latestCheckpoint(store, "merge-default"))!.config.model).toMatchObject({
      merge: "residual",
    });
    // Started as the tutorial's model; resubmitted without saying so (the default is residual now).
    await trainRun(
      { store, tf, log },
      spec("merge-old", 1, { model: { ...spec("x", 1).model, merge: "tutorial" } }),
    );
    const resumed = await trainRun({ store, tf, log }, spec("merge-old", 2));
    expect(resumed.resumedFrom).toBe(1);
    expect((await latestCheckpoint(store, "merge-old"))!.config.model).toMatchObject({ merge: "tutorial" });
    // Same data, seed and weights shapes, different function: the two runs' first epochs differ.
    const [a, b] = await Promise.all(["merge-default", "merge-old"].map((r) => latestCheckpoint(store, r)));
    expect(a!.history[0]!.valLoss).not.toBe(b!.history[0]!.valLoss);
  });

  it("streamed one shard at a time (a window smaller than the dataset), resumes to the bit", async () => {
    // The training split spans several shards, so a one-shard window never holds all of it.
    const scan = await scanShards(store, "drawn", encoderId);
    expect(scan.shardsWith.train.length).toBeGreaterThan(1);
    const small = { windowShards: 1, prefetchShards: 1 };
    const straight = await trainRun({ store, tf, log }, spec("window-straight", 3, small));
    // Stopped after epoch 2's checkpoint, with the same spec (the learning-rate schedule spans its epochs).
    const stop = new AbortController();
    const onProgress = (p: { epoch: number }) => (p.epoch === 2 ? stop.abort() : undefined);
    await expect(
      trainRun({ store, tf, log, signal: stop.signal, onProgress }, spec("window-interrupted", 3, small)),
    ).rejects.toThrow();
    expect((await latestCheckpoint(store, "window-interrupted"))?.epoch).toBe(2);
    const resumed = await trainRun({ store, tf, log }, spec("window-interrupted", 3, small));
    expect(resumed.resumedFrom).toBe(2);
    // Every epoch's losses and validation scores, and the weights and Adam state at the end, equal.
    const scores = (h: (typeof straight.history)[number]) => [
      h.epoch,
      h.trainLoss,
      h.valLoss,
      h.bleu4,
      h.cider,
    ];
    expect(resumed.history.map(scores)).toEqual(straight.history.map(scores));
    const a = (await latestCheckpoint(store, "window-straight"))!;
    const b = (await latestCheckpoint(store, "window-interrupted"))!;
    expect(b.optimizer.iterations).toBe(a.optimizer.iterations);
    for (const [i, w] of a.weights.entries())
      expect(Array.from(b.weights[i]!.data), w.name).toEqual(Array.from(w.data));
    for (const [i, w] of a.optimizer.slots.entries())
      expect(Array.from(b.optimizer.slots[i]!.data), w.name).toEqual(Array.from(w.data));
    expect(resumed.test.scores).toEqual(straight.test.scores);
    // A different window is a different data order: the runs are not the same as a whole-dataset window.
    const whole = await trainRun({ store, tf, log }, spec("window-whole", 1));
    expect(whole.history[0]!.trainLoss).not.toBe(straight.history[0]!.trainLoss);
  });

  it("capflow eval streams the split: the same report whatever the window", async () => {
    const opts = { model: "default", dataset: "drawn", split: "val" as const, resamples: 50 };
    const oneShard = await evaluateModel(store, tf, { ...opts, windowShards: 1 });
    const whole = await evaluateModel(store, tf, { ...opts, windowShards: 8 });
    const scan = await scanShards(store, "drawn", encoderId, { countWords: false });
    expect(oneShard.images).toBe(scan.images.val);
    expect(scan.shardsWith.val.length).toBeGreaterThan(1);
    expect(oneShard.samples).toEqual(whole.samples);
    expect(oneShard.scores).toEqual(whole.scores);
  });

  it("keeps frozen word vectors from a GloVe file fixed through training", async () => {
    const vectors = "drawing 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8\nshapes -1 -2 -3 -4 -5 -6 -7 -8\n";
    await store.put("embeddings/test.txt", vectors);
    await trainRun({ store, tf, log }, spec("glove", 2, { wordVectorsKey: "embeddings/test.txt" }));
    const ckpt = await latestCheckpoint(store, "glove");
    const tokens = ckpt!.vocab.tokens;
    const emb = ckpt!.weights.find((w) => w.name === "embedding/embeddings")!;
    const row = (word: string) =>
      Array.from(emb.data.subarray(tokens.indexOf(word) * 8, tokens.indexOf(word) * 8 + 8));
    row("drawing").forEach((v, i) => expect(v).toBeCloseTo((i + 1) / 10, 6));
    expect(row("shapes")).toEqual([-1, -2, -3, -4, -5, -6, -7, -8]);
    expect(row("coloured")).toEqual(new Array(8).fill(0));
  });
});
