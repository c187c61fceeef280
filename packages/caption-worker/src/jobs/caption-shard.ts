import {
  getJson,
  keys,
  readShardFeatures,
  type BulkResultLine,
  type BulkShardResult,
  type JobData,
  type ObjectStore,
  type ShardList,
} from "@capflow/common";
import type { Captioner } from "../captioner.ts";

/**
 * A bulk job's shard: captions every image of an ingested shard from its stored feature vectors (no
 * image is encoded twice) and writes one JSONL object per shard; quarantined images get an error line.
 * Idempotent: a redone shard rewrites the same key.
 */
export async function captionShard(
  captioner: Captioner,
  store: ObjectStore,
  data: JobData<"caption-bulk">,
  signal: AbortSignal,
): Promise<BulkShardResult> {
  const lease = await captioner.holder(data.model).acquire();
  try {
    const { pointer } = lease.loaded;
    const shard = await getJson<ShardList>(store, data.shardKey);
    const keyOf = new Map(shard.images.map((i) => [i.id, i.key]));
    const { index, vectors } = await readShardFeatures(store, pointer.encoderId, data.dataset, data.shardId);
    const lines: BulkResultLine[] = [];
    const chunk = 64;
    for (let i = 0; i < index.ids.length; i += chunk) {
      signal.throwIfAborted();
      const n = Math.min(chunk, index.ids.length - i);
      const out = await captioner.decode(
        lease.loaded,
        vectors.subarray(i * index.dim, (i + n) * index.dim),
        n,
        data.decode,
      );
      out.forEach((o, j) => {
        const id = index.ids[i + j]!;
        lines.push({
          id,
          key: keyOf.get(id) ?? "",
          caption: o.caption,
          logProb: o.logProb,
          confidence: o.confidence,
          outOfDomain: o.outOfDomain,
        });
      });
    }
    for (const f of index.failures)
      lines.push({ id: f.id, key: keyOf.get(f.id) ?? "", error: { reason: f.reason, message: f.message } });
    const resultsKey = keys.captionShardResults(data.batchId, data.shardId);
    await store.put(resultsKey, lines.map((l) => JSON.stringify(l)).join("\n") + (lines.length ? "\n" : ""));
    return { shardId: data.shardId, captioned: index.ids.length, failed: index.failures.length, resultsKey };
  } finally {
    lease.release();
  }
}
