import { describe, expect, it } from "vitest";
import { bleuScores } from "./bleu.ts";
import { exactMatch, hasTripleRepeat, scoreWithIntervals } from "./bootstrap.ts";
import { ciderD } from "./cider.ts";

const refs = [
  [
    ["dog", "face"],
    ["a", "dog", "face"],
  ],
  [["cat"], ["a", "cat"]],
  [
    ["keycap", "5"],
    ["keycap", "digit", "five"],
  ],
  [["red", "heart"]],
];

describe("scores with bootstrap intervals", () => {
  it("agrees with corpus BLEU and CIDEr-D, with an interval around each value", () => {
    const hyps = ["dog face", "a dog", "keycap 5", "red red red"];
    const s = scoreWithIntervals(hyps, refs, { resamples: 200 });
    const split = hyps.map((h) => h.split(" "));
    const bleu = bleuScores(refs, split);
    expect(s.bleu1.value).toBeCloseTo(bleu.bleu1, 10);
    expect(s.bleu4.value).toBeCloseTo(bleu.bleu4, 10);
    expect(s.cider.value).toBeCloseTo(ciderD(refs, split).score, 10);
    expect(s.exact.value).toBe(0.5);
    for (const k of ["bleu1", "cider", "exact"] as const) {
      expect(s[k].low).toBeLessThanOrEqual(s[k].value);
      expect(s[k].high).toBeGreaterThanOrEqual(s[k].value);
      expect(s[k].high).toBeGreaterThan(s[k].low);
    }
    expect(s.repeats).toBe(1);
    expect(s.empty).toBe(0);
  });

  it("is reproducible for a seed and narrows with more images", () => {
    const hyps = ["dog face", "cat", "keycap", "red heart"];
    const a = scoreWithIntervals(hyps, refs, { resamples: 100, seed: 3 });
    expect(scoreWithIntervals(hyps, refs, { resamples: 100, seed: 3 })).toEqual(a);
    const many = scoreWithIntervals(
      Array.from({ length: 100 }, (_, i) => hyps[i % 4]!),
      Array.from({ length: 100 }, (_, i) => refs[i % 4]!),
      { resamples: 200 },
    );
    expect(many.exact.high - many.exact.low).toBeLessThan(a.exact.high - a.exact.low);
  });

  it("counts empty captions and exact names", () => {
    expect(scoreWithIntervals(["", "cat"], refs.slice(0, 2)).empty).toBe(1);
    expect(exactMatch(["a", "cat"], refs[1]!)).toBe(true);
    expect(exactMatch(["cat", "a"], refs[1]!)).toBe(false);
    expect(hasTripleRepeat(["a", "a", "b", "a"])).toBe(false);
    expect(hasTripleRepeat(["a", "a", "a"])).toBe(true);
  });
});
