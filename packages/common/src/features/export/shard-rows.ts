import type { Split } from "../../dataset/manifest.ts";
import * as keys from "../../store/keys.ts";
import { getJson, type ObjectStore } from "../../store/object-store.ts";
import { readShardFeatures, readShardIndex, type ShardList } from "../shard-format.ts";

/** One exported row's metadata: the image a vector belongs to and where the vector came from. */
export interface RowMeta {
  imageId: string;
  file: string;
  split: Split;
  shardId: string;
  /** Row of the vector in `features/<encoder>/<dataset>/<shard>.npy`. */
  shardRow: number;
  captions: string[];
}

/** A shard's exported rows: those with a vector (and of the split asked for), in matrix order. */
export interface ShardRows {
  rows: RowMeta[];
  /** [rows.length × dim], only when asked for. */
  vectors?: Float32Array;
  dim: number;
  /** Images of the shard (and split) the feature worker quarantined: no vector, not exported. */
  quarantined: number;
}

/**
 * Reads one committed shard's rows for export: the shard list (file, split, captions, written by
 * ingest) joined with the shard index (which images got a vector, in row order), and the vectors
 * when `withVectors`. Needs nothing but the store: no model runtime, no Redis.
 */
export async function readShardRows(
  store: ObjectStore,
  at: { dataset: string; encoderId: string; shardId: string },
  opts: { split?: Split; withVectors: boolean },
): Promise<ShardRows> {
  const { dataset, encoderId, shardId } = at;
  const [list, features] = await Promise.all([
    getJson<ShardList>(store, keys.shardList(dataset, shardId)),
    opts.withVectors
      ? readShardFeatures(store, encoderId, dataset, shardId)
      : readShardIndex(store, encoderId, dataset, shardId).then((index) => ({ index, vectors: undefined })),
  ]);
  const { index } = features;
  const byId = new Map(list.images.map((i) => [i.id, i]));
  const keep: number[] = [];
  const rows: RowMeta[] = [];
  index.ids.forEach((id, shardRow) => {
    const meta = byId.get(id);
    if (!meta?.split || !meta.captions) {
      throw new Error(
        `shard ${shardId} of "${dataset}" lists no split or captions for ${id}: ingest the dataset again ` +
          `(nothing already stored or encoded is redone)`,
      );
    }
    if (opts.split && meta.split !== opts.split) return;
    keep.push(shardRow);
    rows.push({
      imageId: id,
      file: meta.file ?? "",
      split: meta.split,
      shardId,
      shardRow,
      captions: meta.captions,
    });
  });
  const split = opts.split;
  const quarantined = split
    ? index.failures.filter((f) => byId.get(f.id)?.split === split).length
    : index.failures.length;
  let vectors = features.vectors;
  if (vectors && keep.length !== index.ids.length) {
    const all = vectors;
    vectors = new Float32Array(keep.length * index.dim);
    keep.forEach((r, i) => vectors!.set(all.subarray(r * index.dim, (r + 1) * index.dim), i * index.dim));
  }
  return { rows, ...(vectors ? { vectors } : {}), dim: index.dim, quarantined };
}
