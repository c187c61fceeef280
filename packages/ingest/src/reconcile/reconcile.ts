import {
  getJson,
  keys,
  NotFoundError,
  readDatasetInfo,
  type JobInput,
  type ObjectStore,
  type TypedQueue,
} from "@capflow/common";
import { featuresJobId } from "../ingest/sharding.ts";

export interface ReconcileOptions {
  dataset: string;
  /** The encoder whose outputs count as done (default: `encoders/current.json`). */
  encoderId?: string;
  /** Report what would be re-enqueued without touching the queue. */
  dryRun?: boolean;
  /** Shards checked concurrently. */
  concurrency?: number;
}

export interface ReconcileSummary {
  dataset: string;
  encoderId: string;
  /** Shards the dataset is made of. */
  shards: number;
  /** Shards with a committed feature index. */
  done: number;
  /** Shards without output but with a live job (waiting, active, delayed, prioritized). */
  queued: number;
  /** Shards without output or live job, (re-)enqueued now (or that would be, with `dryRun`). */
  reenqueued: number;
  reenqueuedShards: string[];
  /** Shards named by dataset.json whose image list is not in the store: nothing to enqueue. */
  missingLists: string[];
  /** Shard lists in the store that dataset.json does not name (an older ingest): left alone. */
  orphanLists: string[];
}

/** Job states in which BullMQ will still run the job by itself. */
const LIVE = new Set(["waiting", "active", "delayed", "prioritized", "waiting-children"]);

/**
 * Re-enqueues exactly the shards of a dataset that have neither output nor a live job: the answer to
 * a Redis that lost its state (restart without persistence, FLUSHALL, a failover that dropped the last
 * second of writes) or a job removed by hand. The object store is the source of truth: the shard list
 * comes from `dataset.json` (or, when ingest never finished, from the shard lists it stored), "done"
 * means the shard's index (its commit marker) exists. Job ids are ingest's, so a shard enqueued twice
 * concurrently (ingest and reconcile racing) is still one job; failed or completed-without-output
 * jobs are removed first, since BullMQ ignores an add whose id still exists.
 */
export async function reconcileDataset(
  store: ObjectStore,
  queue: TypedQueue<"features">,
  opts: ReconcileOptions,
): Promise<ReconcileSummary> {
  const { dataset } = opts;
  const encoderId = opts.encoderId ?? (await currentEncoder(store));
  const listed = await shardListsInStore(store, dataset);
  const info = await readDatasetInfo(store, dataset).catch((err: unknown) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  if (!info && listed.size === 0)
    throw new Error(`dataset "${dataset}" has no dataset.json and no shard lists in the store`);
  // dataset.json is written last by ingest: when present it is authoritative; shard lists it does not
  // name belong to an earlier ingest (another shard size) and would duplicate images if enqueued.
  const shards = info ? [...new Set(info.shards)] : [...listed].sort();
  const summary: ReconcileSummary = {
    dataset,
    encoderId,
    shards: shards.length,
    done: 0,
    queued: 0,
    reenqueued: 0,
    reenqueuedShards: [],
    missingLists: [],
    orphanLists: info ? [...listed].filter((s) => !info.shards.includes(s)).sort() : [],
  };

  const check = async (shardId: string) => {
    if (await store.head(keys.featureIndex(encoderId, dataset, shardId))) {
      summary.done++;
      return;
    }
    const jobId = featuresJobId(dataset, shardId);
    const existing = await queue.getJob(jobId);
    const state = existing ? await existing.getState() : "missing";
    if (LIVE.has(state)) {
      summary.queued++;
      return;
    }
    if (!listed.has(shardId)) {
      summary.missingLists.push(shardId);
      return;
    }
    summary.reenqueued++;
    summary.reenqueuedShards.push(shardId);
    if (opts.dryRun) return;
    // A failed job, or a completed one whose output is gone: its id would swallow the new add.
    if (existing) await existing.remove();
    const data: JobInput<"features"> = { dataset, shardId, shardKey: keys.shardList(dataset, shardId) };
    await queue.add("shard", data, { jobId });
  };

  const concurrency = opts.concurrency ?? 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, shards.length) }, async () => {
      while (next < shards.length) await check(shards[next++]!);
    }),
  );
  summary.reenqueuedShards.sort();
  summary.missingLists.sort();
  return summary;
}

async function currentEncoder(store: ObjectStore): Promise<string> {
  try {
    return (await getJson<{ id: string }>(store, "encoders/current.json")).id;
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new Error(
        "no encoders/current.json in the store (no feature worker has started yet): pass --encoder <id>",
        { cause: err },
      );
    throw err;
  }
}

async function shardListsInStore(store: ObjectStore, dataset: string): Promise<Set<string>> {
  const prefix = `datasets/${dataset}/shards/`;
  const ids = new Set<string>();
  for await (const { key } of store.list(prefix)) {
    const m = /^([\w.-]+)\.json$/.exec(key.slice(prefix.length));
    if (m) ids.add(m[1]!);
  }
  return ids;
}
