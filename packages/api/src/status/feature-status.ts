import {
  featuresJobId,
  getJson,
  keys,
  type DatasetInfo,
  type ObjectStore,
  type ShardIndex,
  type TypedQueue,
} from "@capflow/common";

/**
 * Where a dataset's feature extraction stands for one encoder: a shard is done when its index (the
 * feature worker's commit marker) is in the store; otherwise its `features` job says whether it is
 * queued, running, failed (with the reason) or missing (lost with Redis: `capflow reconcile` re-enqueues).
 */
export type ShardFeatureState = "done" | "queued" | "active" | "failed" | "missing";

export interface FeatureProgress {
  encoderId: string;
  shards: { total: number; done: number; queued: number; active: number; failed: number; missing: number };
  /** Images with a vector, and quarantined images by reason (from the done shards' indexes). */
  vectors: number;
  quarantine: Record<string, number>;
  /** Failed shards with the first line of their job's reason; missing ones by id. */
  failures: Array<{ shardId: string; reason: string }>;
  missing: string[];
  /** Shards per second over the finished jobs still in the queue, and the time left at that rate. */
  shardsPerSecond?: number;
  etaSeconds?: number;
}

export async function featureProgress(
  store: ObjectStore,
  queue: TypedQueue<"features">,
  info: DatasetInfo,
  encoderId: string,
): Promise<FeatureProgress> {
  const p: FeatureProgress = {
    encoderId,
    shards: { total: info.shards.length, done: 0, queued: 0, active: 0, failed: 0, missing: 0 },
    vectors: 0,
    quarantine: {},
    failures: [],
    missing: [],
  };
  const finished: Array<{ started: number; finished: number }> = [];
  // A few at a time: a store round trip and a Redis one per shard.
  const pending = [...info.shards];
  const workers = Array.from({ length: 8 }, async () => {
    for (let shardId = pending.shift(); shardId; shardId = pending.shift()) {
      const index = await getJson<ShardIndex>(store, keys.featureIndex(encoderId, info.name, shardId)).catch(
        () => undefined,
      );
      const job = await queue.getJob(featuresJobId(info.name, shardId));
      if (job?.finishedOn && job.processedOn && index)
        finished.push({ started: job.processedOn, finished: job.finishedOn });
      if (index) {
        p.shards.done++;
        p.vectors += index.ids.length;
        for (const f of index.failures) p.quarantine[f.reason] = (p.quarantine[f.reason] ?? 0) + 1;
        continue;
      }
      const state = job ? await job.getState() : "unknown";
      if (state === "failed") {
        p.shards.failed++;
        p.failures.push({ shardId, reason: (job?.failedReason || "failed").split("\n")[0]! });
      } else if (state === "active") p.shards.active++;
      else if (state === "unknown" || state === "completed") {
        // completed without an index for this encoder: done by another encoder's worker.
        p.shards.missing++;
        p.missing.push(shardId);
      } else p.shards.queued++;
    }
  });
  await Promise.all(workers);
  if (finished.length >= 2) {
    const span = Math.max(...finished.map((f) => f.finished)) - Math.min(...finished.map((f) => f.started));
    if (span > 0) {
      p.shardsPerSecond = finished.length / (span / 1000);
      const left = p.shards.queued + p.shards.active;
      p.etaSeconds = left > 0 ? Math.round(left / p.shardsPerSecond) : 0;
    }
  }
  return p;
}
