/**
 * Corpus-level BLEU exactly as NLTK's `nltk.translate.bleu_score.corpus_bleu` with its defaults (no
 * smoothing), which is what the tutorial reports as BLEU-1..4:
 * - clipped ("modified") n-gram precision, numerators and denominators summed over the corpus, each
 *   hypothesis adding max(1, its n-gram count) to the denominator;
 * - brevity penalty from the summed hypothesis length and, per hypothesis, the closest reference length
 *   (ties go to the shorter reference);
 * - no unigram match → 0; an order with weight > 0 and no match → 0 (NLTK warns and returns ~0 there:
 *   exp of a log of the smallest float).
 */
import { ngramCounts, type Token } from "./ngrams.ts";

export const BLEU_WEIGHTS = {
  bleu1: [1, 0, 0, 0],
  bleu2: [0.5, 0.5, 0, 0],
  bleu3: [1 / 3, 1 / 3, 1 / 3, 0],
  bleu4: [0.25, 0.25, 0.25, 0.25],
} as const;

/** `references[i]` are the reference token lists of `hypotheses[i]`. */
export function corpusBleu(
  references: readonly (readonly (readonly Token[])[])[],
  hypotheses: readonly (readonly Token[])[],
  weights: readonly number[] = BLEU_WEIGHTS.bleu4,
): number {
  if (references.length !== hypotheses.length) {
    throw new Error(`corpusBleu: ${references.length} reference sets for ${hypotheses.length} hypotheses`);
  }
  const N = weights.length;
  const num = new Array<number>(N + 1).fill(0);
  const den = new Array<number>(N + 1).fill(0);
  let hypLen = 0;
  let refLen = 0;
  hypotheses.forEach((hyp, k) => {
    const refs = references[k]!;
    for (let n = 1; n <= N; n++) {
      const counts = ngramCounts(hyp, n);
      const maxRef = new Map<string, number>();
      for (const ref of refs) {
        for (const [g, c] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      }
      let clipped = 0;
      let total = 0;
      for (const [g, c] of counts) {
        clipped += Math.min(c, maxRef.get(g) ?? 0);
        total += c;
      }
      num[n]! += clipped;
      den[n]! += Math.max(1, total);
    }
    hypLen += hyp.length;
    refLen += closestRefLength(refs, hyp.length);
  });
  if (num[1] === 0) return 0;
  let s = 0;
  for (let n = 1; n <= N; n++) {
    const w = weights[n - 1]!;
    if (w === 0) continue;
    if (num[n] === 0) return 0;
    s += w * Math.log(num[n]! / den[n]!);
  }
  return brevityPenalty(refLen, hypLen) * Math.exp(s);
}

/** BLEU-1..4 with the tutorial's (NLTK's) cumulative weights. */
export function bleuScores(
  references: readonly (readonly (readonly Token[])[])[],
  hypotheses: readonly (readonly Token[])[],
): { bleu1: number; bleu2: number; bleu3: number; bleu4: number } {
  return {
    bleu1: corpusBleu(references, hypotheses, BLEU_WEIGHTS.bleu1),
    bleu2: corpusBleu(references, hypotheses, BLEU_WEIGHTS.bleu2),
    bleu3: corpusBleu(references, hypotheses, BLEU_WEIGHTS.bleu3),
    bleu4: corpusBleu(references, hypotheses, BLEU_WEIGHTS.bleu4),
  };
}

function closestRefLength(refs: readonly (readonly Token[])[], hypLen: number): number {
  let best = Infinity;
  for (const r of refs) {
    const d = Math.abs(r.length - hypLen);
    const bd = Math.abs(best - hypLen);
    if (d < bd || (d === bd && r.length < best)) best = r.length;
  }
  return best === Infinity ? 0 : best;
}

function brevityPenalty(r: number, c: number): number {
  if (c > r) return 1;
  if (c === 0) return 0;
  return Math.exp(1 - r / c);
}
