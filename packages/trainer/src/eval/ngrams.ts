/** n-gram counts of a token sequence, keyed by the tokens joined with U+0001 (never inside a word). */
export type Token = string | number;

export function ngramCounts(tokens: readonly Token[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0001");
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}
