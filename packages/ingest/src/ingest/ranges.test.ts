import { describe, expect, it } from "vitest";
import { planRanges, RangeDigest } from "./ranges.ts";

describe("planRanges", () => {
  it("covers every record once, in order, the last range shorter", () => {
    expect(planRanges(25, 10)).toEqual([
      { range: 0, start: 0, end: 10 },
      { range: 1, start: 10, end: 20 },
      { range: 2, start: 20, end: 25 },
    ]);
  });

  it("makes no range of an empty dataset and refuses a size below 1", () => {
    expect(planRanges(0, 10)).toEqual([]);
    expect(() => planRanges(10, 0)).toThrow(RangeError);
  });
});

describe("RangeDigest", () => {
  const of = (records: Array<{ image: string; captions?: string[]; split?: "train" | "test" }>) => {
    const d = new RangeDigest();
    for (const r of records) d.add({ captions: ["a caption"], ...r });
    return d.hex();
  };

  it("tells two lists of names apart, even when only their order differs", () => {
    expect(of([{ image: "a.jpg" }, { image: "b.jpg" }])).toBe(of([{ image: "a.jpg" }, { image: "b.jpg" }]));
    expect(of([{ image: "a.jpg" }, { image: "b.jpg" }])).not.toBe(
      of([{ image: "b.jpg" }, { image: "a.jpg" }]),
    );
    expect(of([{ image: "ab.jpg" }])).not.toBe(of([{ image: "a" }, { image: "b.jpg" }]));
  });

  it("tells apart the same images with other captions or another split", () => {
    const base = of([{ image: "a.jpg", captions: ["a dog", "a cat"] }]);
    expect(of([{ image: "a.jpg", captions: ["a dog", "a cat"] }])).toBe(base);
    expect(of([{ image: "a.jpg", captions: ["a dog", "a rat"] }])).not.toBe(base);
    expect(of([{ image: "a.jpg", captions: ["a dog a cat"] }])).not.toBe(base);
    expect(of([{ image: "a.jpg", captions: ["a dog", "a cat"], split: "test" }])).not.toBe(base);
  });
});
