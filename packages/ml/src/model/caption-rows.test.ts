import { beforeAll, describe, expect, it } from "vitest";
import { loadTf, type Tf } from "../compute/backend.ts";
import { buildVocabulary } from "../text/vocabulary.ts";
import { tfjsDecoder } from "./caption-decoder.ts";
import { calibrate, CaptionIndex } from "./caption-index.ts";
import { createCaptionModel } from "./caption-model.ts";
import { captionRows } from "./caption-rows.ts";
import { applyFeatureTransform, fitFeatureTransform } from "./feature-transform.ts";

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

const words = ["dog", "face", "cat", "red", "heart", "keycap", "5", "a"];
const dim = 16;
// Three training images: non-negative features pointing in different directions.
const train = Float32Array.from({ length: 3 * dim }, (_, i) =>
  Math.floor(i / dim) === i % 3 ? 2 : 0.1 * (i % 5),
);
const captions = [["dog face", "a dog face"], ["cat", "a cat"], ["keycap 5"]];

describe("captionRows", () => {
  it("gives every caption a confidence and an out-of-domain flag from the model's index", async () => {
    const vocab = buildVocabulary([words], { minCount: 1 });
    const model = createCaptionModel(tf, {
      vocabSize: vocab.size,
      maxLength: 6,
      featureDim: dim,
      embedDim: 8,
      units: 8,
      seed: 3,
    });
    try {
      const transform = fitFeatureTransform("sqrt-l2", train, dim);
      const x = applyFeatureTransform(transform, train);
      const index = new CaptionIndex(x, dim, captions);
      // In-domain similarities are 1 (the training images themselves); an image unlike any is far below.
      index.calibration = calibrate([1, 0.99, 0.98, 0.97], [true, true, false, false], 0);
      expect(index.calibration.oodThreshold).toBeCloseTo(0.97);
      const odd = Float32Array.from({ length: dim }, (_, k) => (k === dim - 1 ? 5 : 0));
      const queries = new Float32Array(2 * dim);
      queries.set(train.subarray(0, dim), 0);
      queries.set(odd, dim);
      const ctx = { decoder: tfjsDecoder(model), vocab, transform, index };
      for (const method of ["beam", "greedy", "rerank"] as const) {
        const out = await captionRows(ctx, queries, 2, { method });
        expect(out).toHaveLength(2);
        for (const o of out) {
          expect(o.caption.length).toBeGreaterThan(0); // never empty, even untrained
          expect(o.confidence).toBeGreaterThan(0);
          expect(o.confidence).toBeLessThan(1);
        }
        expect(out[0]!.similarity).toBeCloseTo(1, 5);
        expect(out[0]!.outOfDomain).toBe(false);
        expect(out[1]!.outOfDomain).toBe(true);
        expect(out[0]!.confidence).toBeGreaterThan(out[1]!.confidence);
      }
      // Re-ranking picks one of the nearest training image's captions.
      const [rr] = await captionRows(ctx, queries.subarray(0, dim), 1, { method: "rerank", rerankK: 1 });
      expect(captions[0]).toContain(rr!.caption);
    } finally {
      model.dispose();
    }
  });

  it("fits a confidence curve that rises with similarity", () => {
    const sims = Array.from({ length: 50 }, (_, i) => 0.5 + i / 100);
    const cal = calibrate(
      sims,
      sims.map((s) => s > 0.75),
      0.02,
    );
    const index = new CaptionIndex(Float32Array.of(1, 0), 2, [["x"]], cal);
    expect(index.confidence(0.95)).toBeGreaterThan(0.9);
    expect(index.confidence(0.55)).toBeLessThan(0.1);
    expect(cal.oodThreshold).toBeCloseTo(0.5);
  });
});
