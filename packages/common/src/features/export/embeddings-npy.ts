import { npyBody, npyHeader, type NpyDtype } from "../npy.ts";

/**
 * The embeddings half of an export part as one `.npy` matrix, as chunks of bytes: the header (the
 * row count is known before the first row is read) and then each slice of vectors as it arrives,
 * so memory is one slice, not the file. Fails if the slices do not add up to `rows`, so a shard that
 * changed since it was counted never yields a file whose header lies.
 */
export async function* embeddingsNpy(
  slices: AsyncIterable<Float32Array>,
  shape: { rows: number; dim: number; dtype: NpyDtype },
): AsyncGenerator<Uint8Array> {
  yield npyHeader(shape.rows, shape.dim, shape.dtype);
  let written = 0;
  for await (const vectors of slices) {
    if (vectors.length % shape.dim !== 0)
      throw new Error(`export: ${vectors.length} values are not rows of ${shape.dim}`);
    written += vectors.length / shape.dim;
    if (written > shape.rows) break;
    yield npyBody(vectors, shape.dtype);
  }
  if (written !== shape.rows) {
    throw new Error(
      `export: ${written} rows of vectors for a part of ${shape.rows}: a shard changed during the export`,
    );
  }
}
