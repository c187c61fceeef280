/**
 * Named Float32 weights ⇄ one binary blob + a JSON manifest (the same split as tfjs's
 * `weightSpecs` + `weightData`), for checkpoints of model weights and optimizer slots alike.
 */
import type { NamedWeight } from "./caption-model.ts";

export interface WeightSpec {
  name: string;
  shape: number[];
  /** Offset into the blob, in float32 elements. */
  offset: number;
}

export function encodeWeights(weights: readonly NamedWeight[]): { specs: WeightSpec[]; data: Uint8Array } {
  let total = 0;
  const specs = weights.map((w) => {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (size !== w.data.length)
      throw new Error(`weight ${w.name}: shape [${w.shape}] does not hold ${w.data.length} values`);
    const spec = { name: w.name, shape: [...w.shape], offset: total };
    total += size;
    return spec;
  });
  const all = new Float32Array(total);
  weights.forEach((w, i) => all.set(w.data, specs[i]!.offset));
  // Little-endian float32 on every platform capflow runs on (x86-64, arm64).
  return { specs, data: new Uint8Array(all.buffer) };
}

export function decodeWeights(specs: readonly WeightSpec[], data: Uint8Array): NamedWeight[] {
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  const all = new Float32Array(copy.buffer);
  return specs.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (s.offset + size > all.length)
      throw new Error(`weight ${s.name} runs past the end of the data (${all.length} floats)`);
    return { name: s.name, shape: [...s.shape], data: all.slice(s.offset, s.offset + size) };
  });
}
