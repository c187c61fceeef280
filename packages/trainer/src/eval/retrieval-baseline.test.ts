import { describe, expect, it } from "vitest";
import { buildRetrievalIndex } from "./retrieval-baseline.ts";

describe("retrieval baseline", () => {
  it("returns the captions of the training image with the highest cosine similarity", () => {
    const train = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const index = buildRetrievalIndex(train, 3, [
      ["a red thing"],
      ["a green thing"],
      ["a blue thing", "blue"],
    ]);
    // Scale does not matter for cosine similarity.
    const q = Float32Array.from([0.1, 0.2, 5, 9, 1, 0]);
    expect(index.captions(q, 2)).toEqual([["a blue thing", "blue"], ["a red thing"]]);
    expect(index.nearest(q, 2)[0]!.similarity).toBeCloseTo(5 / Math.hypot(0.1, 0.2, 5), 6);
  });

  it("rejects features that do not match the caption list", () => {
    expect(() => buildRetrievalIndex(new Float32Array(5), 2, [["x"]])).toThrow(/dim 2/);
  });
});
