/**
 * A seeded xorshift32 generator of numbers in [0, 1]: the same sequence on every machine, so a test's
 * inputs and weights (and the encoder's probe input) are reproducible. Seed 0 would stay 0; it becomes 1.
 */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0xffffffff;
  };
}
