import { describe, expect, it } from "vitest";
import { sampleRows } from "./test-report.ts";

describe("sampleRows", () => {
  it("joins each image's key, file, references, every system's caption and the model's confidence by index", () => {
    const split = {
      ids: ["a", "b"],
      keys: ["images/a.jpg", "images/b.jpg"],
      files: ["a.jpg", "b.jpg"],
      captions: [["a dog runs"], ["a cat sits", "cat on a mat"]],
    };
    const captions = {
      model: ["dog runs", "cat sits"],
      greedy: ["dog", "cat"],
      rerank: ["a dog", "a cat"],
      baseline: ["dog park", "mat"],
    };
    const model = [
      { confidence: 0.9, outOfDomain: false },
      { confidence: 0.1, outOfDomain: true },
    ];
    expect(sampleRows(split, captions, model)).toEqual([
      {
        key: "images/a.jpg",
        file: "a.jpg",
        model: "dog runs",
        greedy: "dog",
        rerank: "a dog",
        baseline: "dog park",
        references: ["a dog runs"],
        confidence: 0.9,
        outOfDomain: false,
      },
      {
        key: "images/b.jpg",
        file: "b.jpg",
        model: "cat sits",
        greedy: "cat",
        rerank: "a cat",
        baseline: "mat",
        references: ["a cat sits", "cat on a mat"],
        confidence: 0.1,
        outOfDomain: true,
      },
    ]);
  });

  it("has no rows for an empty split", () => {
    const empty = { ids: [], keys: [], files: [], captions: [] };
    expect(sampleRows(empty, { model: [], greedy: [], rerank: [], baseline: [] }, [])).toEqual([]);
  });
});
