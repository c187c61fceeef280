import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { buildVocabulary } from "@capflow/ml";
import { loadGloveEmbeddings } from "./glove.ts";

describe("loadGloveEmbeddings", () => {
  const vocab = buildVocabulary([["a", "dog"], ["a", "cat"], ["zebra"]], { minCount: 1 });

  it("fills the rows of known words and leaves the rest at zero", async () => {
    const file = "the 1 1 1\ndog 0.5 -0.25 2\nzebra 3 3 3\n";
    const { matrix, found } = await loadGloveEmbeddings(Readable.from([file]), vocab, 3);
    expect(found).toBe(2);
    const row = (w: string) => Array.from(matrix.subarray(vocab.idOf(w) * 3, vocab.idOf(w) * 3 + 3));
    expect(row("dog")).toEqual([0.5, -0.25, 2]);
    expect(row("zebra")).toEqual([3, 3, 3]);
    expect(row("cat")).toEqual([0, 0, 0]);
    expect(Array.from(matrix.subarray(0, 12))).toEqual(new Array(12).fill(0));
  });

  it("names the line of a vector of the wrong size", async () => {
    await expect(loadGloveEmbeddings(Readable.from(["dog 1 2\ncat 1 2 3\n"]), vocab, 3)).rejects.toThrow(
      /line 1: "dog" has 2 values, expected 3/,
    );
  });
});
