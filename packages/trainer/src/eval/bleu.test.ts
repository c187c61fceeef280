import { describe, expect, it } from "vitest";
import { bleuScores, corpusBleu } from "./bleu.ts";

const w = (s: string) => s.split(" ");

describe("corpusBleu (NLTK corpus_bleu, no smoothing)", () => {
  it("gives 1 for an exact match", () => {
    const s = w("a dog runs across the green grass");
    expect(corpusBleu([[s]], [s])).toBe(1);
  });

  it("applies the brevity penalty exp(1 - r/c) to a short hypothesis", () => {
    // Every n-gram matches; c = 5, r = 6.
    expect(corpusBleu([[w("the cat sat on the mat")]], [w("the cat sat on the")])).toBeCloseTo(
      Math.exp(1 - 6 / 5),
      15,
    );
  });

  it("takes the closest reference length, ties to the shorter one", () => {
    // Lengths 4 and 6 are both 1 away from 5: the shorter wins, so no penalty.
    expect(corpusBleu([[w("a b c d"), w("a b c d e f")]], [w("a b c d e")])).toBe(1);
  });

  it("clips counts by the most any one reference has", () => {
    const hyp = w("the the the the the the the");
    expect(corpusBleu([[w("the cat is on the mat")]], [hyp], [1])).toBeCloseTo(2 / 7, 15);
  });

  it("returns 0 when an order inside the weights has no match, and scores the lower orders", () => {
    const refs = [[w("the cat sat in a mat")]];
    const hyps = [w("the cat sat on a mat")];
    const s = bleuScores(refs, hyps);
    expect(s.bleu1).toBeCloseTo(5 / 6, 15);
    expect(s.bleu2).toBeCloseTo(Math.sqrt(0.5), 15);
    expect(s.bleu3).toBeCloseTo(0.5, 15);
    expect(s.bleu4).toBe(0);
    expect(corpusBleu([[w("x y z")]], [w("a b c")], [1])).toBe(0);
  });

  it("reproduces the NLTK docstring example: 0.5920778868801042", () => {
    const hyp1 = w(
      "It is a guide to action which ensures that the military always obeys the commands of the party",
    );
    const ref1a = w(
      "It is a guide to action that ensures that the military will forever heed Party commands",
    );
    const ref1b = w(
      "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    );
    const ref1c = w("It is the practical guide for the army always to heed the directions of the party");
    const hyp2 = w("he read the book because he was interested in world history");
    const ref2a = w("he was interested in world history because he read the book");
    expect(corpusBleu([[ref1a, ref1b, ref1c], [ref2a]], [hyp1, hyp2])).toBeCloseTo(0.5920778868801042, 14);
  });

  it("works on token ids as well as words", () => {
    expect(corpusBleu([[[4, 5, 6, 7, 8]]], [[4, 5, 6, 7, 8]])).toBe(1);
  });
});
