import { describe, expect, it } from "vitest";
import { ciderD } from "./cider.ts";

const w = (s: string) => s.split(" ");

describe("ciderD (pycocoevalcap CIDEr-D)", () => {
  it("scores 5 for exact two-word matches (unigram and bigram cosines 1, no 3/4-grams)", () => {
    const r = ciderD([[w("a b")], [w("c d")]], [w("a b"), w("c d")]);
    expect(r.scores).toEqual([5, 5]);
    expect(r.score).toBe(5);
  });

  it("matches a hand computation with clipping, unseen n-grams and the length penalty", () => {
    // Two images → idf of an n-gram seen in one image = log 2 − log 1; unseen "b b" counts df = 1 too.
    // Unigrams: hyp {a: L, b: 2L}, ref {a: L, b: L} → (L² + L²)/(L√5 · L√2) = 2/√10.
    // Bigrams: hyp {ab: L, bb: L}, ref {ab: L} → L²/(L√2 · L) = 1/√2. Bigram counts 2 vs 1 → δ = 1.
    const r = ciderD([[w("a b")], [w("c d")]], [w("a b b"), w("c d")]);
    const expected = ((2 / Math.sqrt(10) + 1 / Math.SQRT2) / 4) * Math.exp(-1 / 72) * 10;
    expect(r.scores[0]).toBeCloseTo(expected, 12);
    expect(r.score).toBeCloseTo((expected + 5) / 2, 12);
  });

  it("averages over references and gives 0 to a hypothesis sharing nothing", () => {
    const r = ciderD([[w("a b"), w("x y")], [w("c d")]], [w("a b"), w("q r")]);
    expect(r.scores[1]).toBe(0);
    expect(r.scores[0]).toBeGreaterThan(0);
    expect(r.scores[0]).toBeLessThan(5);
  });
});
