import { encodeNpy, keys, putJson, type ObjectStore, type ShardIndex } from "@capflow/common";

/**
 * Writes a shard's output: the matrix first, the index last. The index is the commit marker: a
 * reader (or the skip check of a redone job) trusts a shard only when its index exists, so a worker
 * killed between the writes leaves nothing that looks done. Same input → same bytes.
 */
export async function writeShard(
  store: ObjectStore,
  index: ShardIndex,
  vectors: Float32Array,
  /** The augmented views' matrix, rows as in `index.views.rows` (written before the index too). */
  viewVectors?: Float32Array,
): Promise<void> {
  const { encoderId, dataset, shardId } = index;
  await store.put(
    keys.featureMatrix(encoderId, dataset, shardId),
    encodeNpy(vectors, index.ids.length, index.dim, index.dtype),
  );
  if (index.views && index.views.rows.length > 0) {
    if (!viewVectors) throw new Error(`shard ${shardId}: the index lists views but no view matrix was given`);
    await store.put(
      keys.featureViewsMatrix(encoderId, dataset, shardId),
      encodeNpy(viewVectors, index.views.rows.length, index.dim, index.dtype),
    );
  }
  await putJson(store, keys.featureIndex(encoderId, dataset, shardId), index);
}

export async function shardDone(
  store: ObjectStore,
  encoderId: string,
  dataset: string,
  shardId: string,
): Promise<boolean> {
  return (await store.head(keys.featureIndex(encoderId, dataset, shardId))) !== undefined;
}
