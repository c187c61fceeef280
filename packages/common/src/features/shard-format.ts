import type { ObjectStore } from "../store/object-store.ts";
import { getJson } from "../store/object-store.ts";
import * as keys from "../store/keys.ts";
import type { AugmentRecipe } from "./augment-recipe.ts";
import { decodeNpy, type NpyDtype } from "./npy.ts";

/** A shard's image list, written by ingest: what a `features` job works on. */
export interface ShardList {
  dataset: string;
  shardId: string;
  /**
   * `file` (the dataset's name for the image), `split` and `captions` (as in the manifest) are written
   * by ingest so that bulk captions filter by split per shard and the trainer streams a shard's rows
   * without the manifest; shard lists from before lack them. `views`: augmented views to extract
   * besides the clean vector (training images only, ingest's `--augment-views`); absent or 0 for
   * validation and test images.
   */
  images: Array<{
    id: string;
    key: string;
    file?: string;
    split?: "train" | "val" | "test";
    captions?: string[];
    views?: number;
  }>;
  /** The augmentation recipe of the views (@capflow/ml preprocess/augment-view.ts); default `mix`. */
  recipe?: AugmentRecipe;
}

/**
 * Why an image is in quarantine (a shard index's `failures[].reason`, the `reason` label of
 * `capflow_feature_images_total`). Part of the quarantine format: add, never rename.
 * - `empty`, `format`, `decode`, `too_large`, `timeout`, `invalid`: the decode path refused it
 *   (../preprocess/decode-image.ts);
 * - `missing`: its object is not in the store;
 * - `non_finite`: the encoder returned NaN/Infinity for it;
 * - `crashed_worker`: the worker process died twice in a row while this image was the only one in
 *   flight (a native crash in decode or encode); the rest of its shard was encoded without it
 *   (feature-worker `crash-isolation.ts`).
 */
export const DECODE_FAILURE_REASONS = [
  "empty",
  "format",
  "decode",
  "too_large",
  "timeout",
  "invalid",
] as const;
export type DecodeFailureReason = (typeof DECODE_FAILURE_REASONS)[number];
export const FAILURE_REASONS = [
  ...DECODE_FAILURE_REASONS,
  "missing",
  "non_finite",
  "crashed_worker",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];
export interface ShardFailure {
  id: string;
  reason: FailureReason;
  message: string;
}

/** A shard's output index, written last by the feature worker (its commit marker). */
export interface ShardIndex {
  encoderId: string;
  dataset: string;
  shardId: string;
  dtype: NpyDtype;
  dim: number;
  /** Image ids in row order of the matrix. */
  ids: string[];
  /** Quarantine: images that yield no vector, with a reason code. */
  failures: ShardFailure[];
  /**
   * Augmented training views, in their own matrix (`<shard>.views.npy`) so that nothing that reads the
   * clean vectors (serving, evaluation, the retrieval baseline) can pick one up: row r of it is view
   * `rows[r].view` (1, 2, ...) of image `rows[r].source`, which is one of `ids`. Only the trainer reads
   * them, for training images only. Absent when the shard asked for none.
   */
  views?: { recipe: AugmentRecipe; rows: Array<{ source: string; view: number }> };
}

export async function readShardIndex(
  store: ObjectStore,
  encoderId: string,
  dataset: string,
  shardId: string,
): Promise<ShardIndex> {
  return getJson<ShardIndex>(store, keys.featureIndex(encoderId, dataset, shardId));
}

/** Reads a committed shard: its index and its vectors (rows in index order). */
export async function readShardFeatures(
  store: ObjectStore,
  encoderId: string,
  dataset: string,
  shardId: string,
): Promise<{ index: ShardIndex; vectors: Float32Array }> {
  const index = await readShardIndex(store, encoderId, dataset, shardId);
  const { data, rows, cols } = decodeNpy(await store.get(keys.featureMatrix(encoderId, dataset, shardId)));
  if (rows !== index.ids.length || cols !== index.dim) {
    throw new Error(
      `shard ${shardId}: matrix is ${rows}x${cols}, index says ${index.ids.length}x${index.dim}`,
    );
  }
  return { index, vectors: data };
}

/** A committed shard's augmented views (rows as in `index.views.rows`); undefined when it has none. */
export async function readShardViews(
  store: ObjectStore,
  index: ShardIndex,
): Promise<{ rows: Array<{ source: string; view: number }>; vectors: Float32Array } | undefined> {
  if (!index.views || index.views.rows.length === 0) return undefined;
  const { encoderId, dataset, shardId } = index;
  const { data, rows, cols } = decodeNpy(
    await store.get(keys.featureViewsMatrix(encoderId, dataset, shardId)),
  );
  if (rows !== index.views.rows.length || cols !== index.dim) {
    throw new Error(
      `shard ${shardId}: views matrix is ${rows}x${cols}, index says ${index.views.rows.length}x${index.dim}`,
    );
  }
  return { rows: index.views.rows, vectors: data };
}

/** Every committed shard of a dataset for an encoder. */
export async function* listShardIndexes(
  store: ObjectStore,
  encoderId: string,
  dataset: string,
): AsyncIterable<ShardIndex> {
  for await (const { key } of store.list(keys.featurePrefix(encoderId, dataset))) {
    if (key.endsWith(".json")) yield await getJson<ShardIndex>(store, key);
  }
}
