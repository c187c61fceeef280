/** Cosine similarity of row i of `a` and `b` (both n×dim), for every row. */
export function rowCosines(a: Float32Array, b: Float32Array, dim: number): Float64Array {
  if (a.length !== b.length || a.length % dim !== 0)
    throw new RangeError(`shapes ${a.length} vs ${b.length}`);
  const n = a.length / dim;
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) {
      ab += a[i]! * b[i]!;
      aa += a[i]! * a[i]!;
      bb += b[i]! * b[i]!;
    }
    out[r] = aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
  }
  return out;
}

export interface CosineSummary {
  n: number;
  mean: number;
  /** 1st percentile (nearest rank). */
  p1: number;
  min: number;
}

export function summariseCosines(c: ArrayLike<number>): CosineSummary {
  const s = Float64Array.from(c).sort();
  if (s.length === 0) throw new RangeError("no cosines");
  let sum = 0;
  for (const v of s) sum += v;
  const rank = Math.max(0, Math.ceil(0.01 * s.length) - 1);
  return { n: s.length, mean: sum / s.length, p1: s[rank]!, min: s[0]! };
}
