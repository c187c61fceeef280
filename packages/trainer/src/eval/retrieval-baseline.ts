/**
 * The floor a trained decoder has to beat: caption an image with the captions of the most similar
 * training image (cosine similarity of encoder features).
 */
export interface RetrievalIndex {
  /** Index of the nearest training image and its similarity, for each query row. */
  nearest(queries: Float32Array, n: number): { index: number; similarity: number }[];
  /** The captions of the nearest training image, for each query row. */
  captions(queries: Float32Array, n: number): string[][];
}

export function buildRetrievalIndex(
  features: Float32Array,
  dim: number,
  captions: readonly (readonly string[])[],
): RetrievalIndex {
  const count = features.length / dim;
  if (!Number.isInteger(count) || count !== captions.length) {
    throw new Error(
      `retrieval index: ${features.length} values with dim ${dim} for ${captions.length} images`,
    );
  }
  const unit = normalised(features, dim);
  const nearest = (queries: Float32Array, n: number) => {
    const q = normalised(queries, dim);
    const out: { index: number; similarity: number }[] = [];
    for (let i = 0; i < n; i++) {
      let best = -1;
      let bestSim = -Infinity;
      for (let j = 0; j < count; j++) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += q[i * dim + k]! * unit[j * dim + k]!;
        if (dot > bestSim) {
          bestSim = dot;
          best = j;
        }
      }
      out.push({ index: best, similarity: bestSim });
    }
    return out;
  };
  return {
    nearest,
    captions: (queries, n) => nearest(queries, n).map(({ index }) => [...(captions[index] ?? [])]),
  };
}

function normalised(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[i + k]! * x[i + k]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) out[i + k] = x[i + k]! * inv;
  }
  return out;
}
