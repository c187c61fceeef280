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
  it("tells two lists of names apart, even when only their order differs", () => {
    const of = (names: string[]) => {
      const d = new RangeDigest();
      for (const n of names) d.add(n);
      return d.hex();
    };
    expect(of(["a.jpg", "b.jpg"])).toBe(of(["a.jpg", "b.jpg"]));
    expect(of(["a.jpg", "b.jpg"])).not.toBe(of(["b.jpg", "a.jpg"]));
    expect(of(["ab.jpg"])).not.toBe(of(["a", "b.jpg"]));
  });
});
