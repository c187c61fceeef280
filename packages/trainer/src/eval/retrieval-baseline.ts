/**
 * The floor a trained decoder has to beat: caption an image with the captions of the most similar
 * training image (cosine similarity of encoder features).
 */
import { CaptionIndex } from "@capflow/ml";

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
  // The same cosine search the published model's caption index runs (one implementation).
  const index = new CaptionIndex(features, dim, captions);
  const nearest = (queries: Float32Array, n: number) =>
    index.nearest(queries, n, 1).map((nb) => nb[0] ?? { index: -1, similarity: -Infinity });
  return {
    nearest,
    captions: (queries, n) => nearest(queries, n).map(({ index: i }) => [...(captions[i] ?? [])]),
  };
}
