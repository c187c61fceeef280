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
 * A bulk job's shard: captions the shard's images (only those of the job's split, when it names one)
 * from their stored feature vectors (no image is encoded twice) and writes one JSONL object per shard;
 * quarantined images get an error line. Each line carries the image's file name from the shard list.
 * Idempotent: a redone shard rewrites the same key with the same bytes.
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
    const meta = new Map(shard.images.map((i) => [i.id, i]));
    if (data.split && shard.images.some((i) => i.split === undefined)) {
      throw new Error(
        `shard ${data.shardId} lists no splits (ingested before split-aware bulk jobs): ingest the dataset again (nothing is stored or encoded twice)`,
      );
    }
    const wanted = (id: string) => !data.split || meta.get(id)?.split === data.split;
    const { index, vectors } = await readShardFeatures(store, pointer.encoderId, data.dataset, data.shardId);
    // Rows of the split, in matrix order: contiguous runs are decoded in chunks of up to 64.
    const rows = index.ids.flatMap((id, row) => (wanted(id) ? [row] : []));
    const lines: BulkResultLine[] = [];
    const chunk = 64;
    const describe = (id: string): Pick<BulkResultLine, "id" | "key" | "file"> => {
      const m = meta.get(id);
      return { id, key: m?.key ?? "", ...(m?.file !== undefined ? { file: m.file } : {}) };
    };
    for (let i = 0; i < rows.length; i += chunk) {
      signal.throwIfAborted();
      const n = Math.min(chunk, rows.length - i);
      const batch = new Float32Array(n * index.dim);
      for (let j = 0; j < n; j++) {
        const row = rows[i + j]!;
        batch.set(vectors.subarray(row * index.dim, (row + 1) * index.dim), j * index.dim);
      }
      const out = await captioner.decode(lease.loaded, batch, n, data.decode);
      out.forEach((o, j) => {
        lines.push({
          ...describe(index.ids[rows[i + j]!]!),
          caption: o.caption,
          logProb: o.logProb,
          confidence: o.confidence,
          outOfDomain: o.outOfDomain,
        });
      });
    }
    const failures = index.failures.filter((f) => wanted(f.id));
    for (const f of failures)
      lines.push({ ...describe(f.id), error: { reason: f.reason, message: f.message } });
    const resultsKey = keys.captionShardResults(data.batchId, data.shardId);
    await store.put(resultsKey, lines.map((l) => JSON.stringify(l)).join("\n") + (lines.length ? "\n" : ""));
    return { shardId: data.shardId, captioned: rows.length, failed: failures.length, resultsKey };
  } finally {
    lease.release();
  }
}
