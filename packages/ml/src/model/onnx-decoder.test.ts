import * as ort from "onnxruntime-node";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadTf, type Tf } from "../compute/backend.ts";
import { teacherBatch } from "./batches.ts";
import type { CaptionDecoder } from "./caption-decoder.ts";
import { createCaptionModel, type CaptionModel, type CaptionModelConfigInput } from "./caption-model.ts";
import type { BeamResult, DecodeResult } from "./decode-search.ts";
import { loadOnnxDecoder } from "./onnx-decoder.ts";
import { small, tinySet } from "./test-fixtures.ts";

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

const quiet = { info() {}, warn() {} };
const MERGES = ["tutorial", "residual"] as const;
// onnxruntime-common types InferenceSession as a factory; at run time it is the class of every session.
const sessionPrototype = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;

/** A model trained on the tiny set until its captions end with <end>. */
function trainedModel(extra: Partial<CaptionModelConfigInput> = {}): CaptionModel {
  const model = createCaptionModel(tf, { ...small, dropout: 0, learningRate: 0.01, ...extra });
  const batch = teacherBatch(tinySet(), [0, 1, 2]);
  for (let i = 0; i < 150; i++) model.trainBatch(batch);
  return model;
}

/** `n` feature rows, distinct and deterministic. */
function features(n: number, dim = 16): Float32Array {
  return new Float32Array(n * dim).map((_, i) => Math.cos(i * 0.61) * 0.9);
}

function expectSameGreedy(onnx: DecodeResult, tfjs: DecodeResult): void {
  expect(onnx.tokens).toEqual(tfjs.tokens);
  onnx.logProbs.forEach((lp, i) => expect(Math.abs(lp - tfjs.logProbs[i]!)).toBeLessThan(1e-4));
}

function expectSameBeams(onnx: BeamResult[], tfjs: BeamResult[]): void {
  expect(onnx.map((b) => b.tokens)).toEqual(tfjs.map((b) => b.tokens));
  onnx.forEach((b, i) => {
    expect(Math.abs(b.logProb - tfjs[i]!.logProb)).toBeLessThan(1e-4);
    expect(Math.abs(b.score - tfjs[i]!.score)).toBeLessThan(1e-4);
  });
}

const open: Array<{ dispose(): unknown }> = [];
function track<T extends { dispose(): unknown }>(x: T): T {
  open.push(x);
  return x;
}
afterEach(async () => {
  for (const x of open.splice(0)) await x.dispose();
  vi.restoreAllMocks();
});

describe("ONNX caption decoder", () => {
  it.each(MERGES)(
    "decodes a seeded random %s-merge model as the tfjs model does, greedy and beam",
    async (merge) => {
      const model = track(createCaptionModel(tf, { ...small, merge }));
      const dec = track(await loadOnnxDecoder(model, { threads: 1, logger: quiet }));
      const feats = features(5);
      expectSameGreedy(await dec.greedyDecode(feats, 5), model.greedyDecode(feats, 5));
      expectSameGreedy(
        await dec.greedyDecode(feats, 5, { maxLength: 4 }),
        model.greedyDecode(feats, 5, { maxLength: 4 }),
      );
      for (const opts of [{ width: 1 }, { width: 3 }, { width: 4, lengthPenalty: 0.7, maxLength: 6 }]) {
        const row = feats.subarray(16, 32);
        expectSameBeams(await dec.beamSearch(row, opts), model.beamSearch(row, opts));
      }
      expect(dec.runtime).toBe("onnx");
      expect(dec.backend).toBe("onnxruntime-node:cpu");
    },
  );

  it.each(MERGES)(
    "decodes a trained %s-merge model whose captions end with <end> as the tfjs model does",
    async (merge) => {
      const model = track(trainedModel({ merge }));
      const dec = track(await loadOnnxDecoder(model, { threads: 1, logger: quiet }));
      const set = tinySet();
      // The three training images, then two unseen rows: rows end at different steps.
      const feats = new Float32Array(5 * 16);
      feats.set(set.features);
      feats.set(features(2), 3 * 16);
      const onnx = await dec.greedyDecode(feats, 5);
      expect(onnx.tokens.slice(0, 3)).toEqual([
        [4, 5, 6],
        [7, 8],
        [9, 10, 11, 4],
      ]);
      expectSameGreedy(onnx, model.greedyDecode(feats, 5));
      for (let i = 0; i < 3; i++) {
        const row = set.features.subarray(i * 16, (i + 1) * 16);
        const beams = await dec.beamSearch(row, { width: 3 });
        expectSameBeams(beams, model.beamSearch(row, { width: 3 }));
        expect(beams[0]!.tokens).toEqual(onnx.tokens[i]);
      }
    },
  );

  it("gives a batch of n the tokens of n batch-1 runs", async () => {
    const model = track(trainedModel());
    const dec = track(await loadOnnxDecoder(model, { threads: 1, logger: quiet }));
    const feats = new Float32Array(6 * 16);
    feats.set(tinySet().features);
    feats.set(features(3), 3 * 16);
    const batch = await dec.greedyDecode(feats, 6);
    for (let i = 0; i < 6; i++) {
      const one = await dec.greedyDecode(feats.subarray(i * 16, (i + 1) * 16), 1);
      expect(one.tokens[0]).toEqual(batch.tokens[i]);
      expect(Math.abs(one.logProbs[0]! - batch.logProbs[i]!)).toBeLessThan(1e-4);
    }
  });

  it("decodes with frozen pretrained word vectors, as trained and as served", async () => {
    const emb = new Float32Array(12 * 8).map((_, i) => Math.cos(i * 0.3) * 0.5);
    const trained = track(trainedModel({ pretrainedEmbeddings: emb }));
    // The caption worker's model: built without the vectors, which come with the weights.
    const served = track(createCaptionModel(tf, small));
    served.setWeights(trained.getWeights());
    const feats = tinySet().features;
    const want = trained.greedyDecode(feats, 3);
    for (const model of [trained, served]) {
      const dec = track(await loadOnnxDecoder(model, { threads: 1, logger: quiet }));
      expectSameGreedy(await dec.greedyDecode(feats, 3), want);
      const row = feats.subarray(0, 16);
      expectSameBeams(await dec.beamSearch(row, { width: 2 }), trained.beamSearch(row, { width: 2 }));
    }
  });

  it("releases both sessions on dispose and refuses to decode after", async () => {
    const release = vi.spyOn(sessionPrototype, "release");
    const model = track(createCaptionModel(tf, small));
    const dec: CaptionDecoder = await loadOnnxDecoder(model, { threads: 1, logger: quiet });
    expect(release).not.toHaveBeenCalled();
    await dec.dispose();
    expect(release).toHaveBeenCalledTimes(2);
    await dec.dispose();
    expect(release).toHaveBeenCalledTimes(2);
    await expect(dec.greedyDecode(features(1), 1)).rejects.toThrow(/disposed/);
    await expect(dec.beamSearch(features(1), { width: 2 })).rejects.toThrow(/disposed/);
  });

  it("refuses weights that disagree with the model's own step, and releases its sessions", async () => {
    const release = vi.spyOn(sessionPrototype, "release");
    const model = track(createCaptionModel(tf, small));
    const other = track(createCaptionModel(tf, { ...small, seed: 8 }));
    const mixed = {
      config: model.config,
      getWeights: () => other.getWeights(),
      nextWordLogProbs: model.nextWordLogProbs.bind(model),
    };
    await expect(loadOnnxDecoder(mixed, { threads: 1, logger: quiet })).rejects.toThrow(
      /disagrees with tfjs/,
    );
    expect(release).toHaveBeenCalledTimes(2);
  });

  it("names a weight whose shape does not fit the config, and a bad execution provider", async () => {
    const model = track(createCaptionModel(tf, small));
    const weights = model
      .getWeights()
      .map((w) =>
        w.name === "lstm/kernel" ? { ...w, shape: [16, 32], data: new Float32Array(16 * 32) } : w,
      );
    await expect(
      loadOnnxDecoder(
        {
          ...model,
          config: model.config,
          getWeights: () => weights,
          nextWordLogProbs: () => new Float32Array(12),
        },
        { logger: quiet },
      ),
    ).rejects.toThrow(/lstm\/kernel has shape \[16,32\], the config implies \[8,64\]/);
    await expect(loadOnnxDecoder(model, { executionProviders: ["gpu"], logger: quiet })).rejects.toThrow(
      /'gpu' is not one of: cpu, cuda, tensorrt/,
    );
  });
});
