/**
 * Every reported score with a bootstrap 95% interval. On 300 test images the standard error of
 * CIDEr-D is about 0.09 (issue 13), so a difference of 0.1 between two systems says nothing on its own.
 *
 * Images are resampled with replacement. CIDEr-D and exact match are means of per-image scores (each
 * image scored once against the document frequencies of the whole evaluated set); corpus BLEU is
 * recomputed on every resample from per-image n-gram statistics. Percentile intervals; the seed is fixed
 * so a report is reproducible.
 */
import { rng } from "../train/train-epoch.ts";
import { BLEU_WEIGHTS } from "./bleu.ts";
import { ciderD } from "./cider.ts";
import { ngramCounts, type Token } from "./ngrams.ts";

export interface Interval {
  value: number;
  low: number;
  high: number;
}

export interface ScoresWithIntervals {
  bleu1: Interval;
  bleu2: Interval;
  bleu3: Interval;
  bleu4: Interval;
  cider: Interval;
  /** Share of images whose caption equals one of their references, word for word. */
  exact: Interval;
  /** Captions with no word, and captions with a word three times in a row. */
  empty: number;
  repeats: number;
  images: number;
}

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
}

/** True when the caption is word for word one of the references (names: "dog face"). */
export function exactMatch(hyp: readonly Token[], refs: readonly (readonly Token[])[]): boolean {
  const h = hyp.join(" ");
  return refs.some((r) => r.join(" ") === h);
}

/** A token three times in a row. */
export function hasTripleRepeat(hyp: readonly Token[]): boolean {
  for (let i = 2; i < hyp.length; i++) if (hyp[i] === hyp[i - 1] && hyp[i] === hyp[i - 2]) return true;
  return false;
}

interface BleuStats {
  num: number[];
  den: number[];
  hypLen: number;
  refLen: number;
}

function bleuStats(hyp: readonly Token[], refs: readonly (readonly Token[])[]): BleuStats {
  const num = [0, 0, 0, 0];
  const den = [0, 0, 0, 0];
  for (let n = 1; n <= 4; n++) {
    const maxRef = new Map<string, number>();
    for (const ref of refs)
      for (const [g, c] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
    let clipped = 0;
    let total = 0;
    for (const [g, c] of ngramCounts(hyp, n)) {
      clipped += Math.min(c, maxRef.get(g) ?? 0);
      total += c;
    }
    num[n - 1] = clipped;
    den[n - 1] = Math.max(1, total);
  }
  let refLen = Infinity;
  for (const r of refs) {
    const d = Math.abs(r.length - hyp.length);
    const bd = Math.abs(refLen - hyp.length);
    if (d < bd || (d === bd && r.length < refLen)) refLen = r.length;
  }
  return { num, den, hypLen: hyp.length, refLen: refLen === Infinity ? 0 : refLen };
}

/** Corpus BLEU (NLTK corpus_bleu, no smoothing) from summed statistics: same as bleu.ts. */
function bleuFrom(stats: readonly BleuStats[], idx: ArrayLike<number>, weights: readonly number[]): number {
  const num = [0, 0, 0, 0];
  const den = [0, 0, 0, 0];
  let c = 0;
  let r = 0;
  for (let k = 0; k < idx.length; k++) {
    const s = stats[idx[k]!]!;
    for (let n = 0; n < 4; n++) {
      num[n]! += s.num[n]!;
      den[n]! += s.den[n]!;
    }
    c += s.hypLen;
    r += s.refLen;
  }
  if (num[0] === 0) return 0;
  let sum = 0;
  for (let n = 0; n < 4; n++) {
    const w = weights[n]!;
    if (w === 0) continue;
    if (num[n] === 0) return 0;
    sum += w * Math.log(num[n]! / den[n]!);
  }
  const bp = c > r ? 1 : c === 0 ? 0 : Math.exp(1 - r / c);
  return bp * Math.exp(sum);
}

function percentile(sorted: readonly number[], p: number): number {
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (x - lo);
}

/** BLEU-1..4, CIDEr-D and exact match with percentile-bootstrap 95% intervals. */
export function scoreWithIntervals(
  hypotheses: readonly string[],
  references: readonly (readonly (readonly Token[])[])[],
  opts: BootstrapOptions = {},
): ScoresWithIntervals {
  const n = hypotheses.length;
  if (references.length !== n)
    throw new Error(`scores: ${references.length} reference sets for ${n} captions`);
  const hyps = hypotheses.map((h) => (h ? h.split(" ") : []));
  const empty = hyps.filter((h) => h.length === 0).length;
  const repeats = hyps.filter(hasTripleRepeat).length;
  const zero = { value: 0, low: 0, high: 0 };
  if (n === 0)
    return {
      bleu1: zero,
      bleu2: zero,
      bleu3: zero,
      bleu4: zero,
      cider: zero,
      exact: zero,
      empty,
      repeats,
      images: 0,
    };
  const cider = ciderD(references, hyps).scores;
  const exact = hyps.map((h, i) => (exactMatch(h, references[i]!) ? 1 : 0));
  const stats = hyps.map((h, i) => bleuStats(h, references[i]!));
  const weights = [BLEU_WEIGHTS.bleu1, BLEU_WEIGHTS.bleu2, BLEU_WEIGHTS.bleu3, BLEU_WEIGHTS.bleu4];
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const mean = (xs: readonly number[], idx: ArrayLike<number>) => {
    let s = 0;
    for (let k = 0; k < idx.length; k++) s += xs[idx[k]!]!;
    return s / idx.length;
  };
  const resamples = opts.resamples ?? 1000;
  const rand = rng(opts.seed ?? 1);
  const draws: number[][] = Array.from({ length: 6 }, () => []);
  const idx = new Int32Array(n);
  for (let b = 0; b < resamples; b++) {
    for (let k = 0; k < n; k++) idx[k] = Math.floor(rand() * n);
    weights.forEach((w, j) => draws[j]!.push(bleuFrom(stats, idx, w)));
    draws[4]!.push(mean(cider, idx));
    draws[5]!.push(mean(exact, idx));
  }
  const values = [...weights.map((w) => bleuFrom(stats, all, w)), mean(cider, all), mean(exact, all)];
  const iv = values.map((value, j) => {
    const sorted = draws[j]!.sort((x, y) => x - y);
    return { value, low: percentile(sorted, 0.025), high: percentile(sorted, 0.975) };
  });
  return {
    bleu1: iv[0]!,
    bleu2: iv[1]!,
    bleu3: iv[2]!,
    bleu4: iv[3]!,
    cider: iv[4]!,
    exact: iv[5]!,
    empty,
    repeats,
    images: n,
  };
}

/** "1.234 [1.101, 1.352]" */
export function formatInterval(i: Interval, digits = 3): string {
  return `${i.value.toFixed(digits)} [${i.low.toFixed(digits)}, ${i.high.toFixed(digits)}]`;
}
