/**
 * CIDEr-D as in pycocoevalcap (`cider_scorer.py`): n = 1..4, sigma = 6, tf-idf vectors with document
 * frequencies taken from the references of the evaluated set, clipped similarity min(h, r)·r, a Gaussian
 * length penalty, averaged over orders and references, ×10; the corpus score is the mean over images.
 * pycocoevalcap's "length" is the number of bigrams (its `n == 1` counts `len(ngram) - 1 == 1`); kept as is
 * so that scores match published numbers.
 */
import { ngramCounts, type Token } from "./ngrams.ts";

export interface CiderOptions {
  n?: number;
  sigma?: number;
}

type Vec = { vec: Map<string, number>[]; norm: number[]; length: number };

function cook(tokens: readonly Token[], n: number): Map<string, number>[] {
  return Array.from({ length: n }, (_, k) => ngramCounts(tokens, k + 1));
}

/** Returns the corpus score and one score per image. */
export function ciderD(
  references: readonly (readonly (readonly Token[])[])[],
  hypotheses: readonly (readonly Token[])[],
  opts: CiderOptions = {},
): { score: number; scores: number[] } {
  const n = opts.n ?? 4;
  const sigma = opts.sigma ?? 6;
  if (references.length !== hypotheses.length) {
    throw new Error(`ciderD: ${references.length} reference sets for ${hypotheses.length} hypotheses`);
  }
  if (hypotheses.length === 0) return { score: 0, scores: [] };
  const crefs = references.map((refs) => refs.map((r) => cook(r, n)));
  const df = new Map<string, number>();
  // Document frequency: in how many images' reference sets each n-gram occurs.
  for (const refs of crefs) {
    const seen = new Set<string>();
    for (const ref of refs) ref.forEach((order, k) => order.forEach((_c, g) => seen.add(`${k}:${g}`)));
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logRefLen = Math.log(references.length);
  const toVec = (counts: Map<string, number>[]): Vec => {
    const vec = counts.map(() => new Map<string, number>());
    const norm = new Array<number>(n).fill(0);
    let length = 0;
    counts.forEach((order, k) => {
      for (const [g, tf] of order) {
        const w = tf * (logRefLen - Math.log(Math.max(1, df.get(`${k}:${g}`) ?? 0)));
        vec[k]!.set(g, w);
        norm[k]! += w * w;
        if (k === 1) length += tf;
      }
    });
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  const sim = (h: Vec, r: Vec): number[] => {
    const delta = h.length - r.length;
    return h.vec.map((orderH, k) => {
      const orderR = r.vec[k]!;
      let val = 0;
      for (const [g, wh] of orderH) {
        const wr = orderR.get(g) ?? 0;
        val += Math.min(wh, wr) * wr;
      }
      if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k]! * r.norm[k]!;
      return val * Math.exp(-(delta * delta) / (2 * sigma * sigma));
    });
  };
  const scores = hypotheses.map((hyp, i) => {
    const h = toVec(cook(hyp, n));
    const refs = crefs[i]!;
    let total = 0;
    for (const ref of refs) {
      const s = sim(h, toVec(ref));
      total += s.reduce((a, b) => a + b, 0) / n;
    }
    return refs.length ? (total / refs.length) * 10 : 0;
  });
  return { score: scores.reduce((a, b) => a + b, 0) / scores.length, scores };
}
