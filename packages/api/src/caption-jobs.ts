import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { Job } from "bullmq";
import type { z } from "zod";
import {
  captionShardJobId,
  getJson,
  initBulkProgress,
  markShardFailed,
  readBulkProgress,
  keys,
  NotFoundError,
  putJson,
  readDatasetInfo,
  type BulkShardResult,
  type CaptionBatch,
  type DatasetInfo,
  type JobInput,
  type ObjectStore,
  type QueueContext,
  type Split,
  type TypedQueue,
} from "@capflow/common";
import { ApiProblem } from "./problem.ts";
import type { CaptionJobRequest, CaptionJobStatus as CaptionJobStatusSchema } from "./schemas.ts";

/**
 * Bulk caption jobs: one `caption-bulk` job per shard of an ingested dataset. The object store
 * holds the batch (batch.json) and the results; BullMQ holds progress. Used by the HTTP API and by
 * `capflow caption --bulk`, so both submit and assemble the same way.
 */
export interface BulkDeps {
  store: ObjectStore;
  queue: TypedQueue<"caption-bulk">;
  /** A producer connection to the queue's Redis, for the batch's progress counters. */
  redis: QueueContext["connection"];
}

/** batch.json as this module writes it: the catalog's CaptionBatch plus cancellation. */
export type StoredBatch = CaptionBatch & { cancelledAt?: string };
export type CaptionJobStatus = z.infer<typeof CaptionJobStatusSchema>;

const BATCH_ID = /^b[0-9a-z]{6,40}$/;

export function newBatchId(): string {
  return `b${Date.now().toString(36)}${randomBytes(6).toString("hex")}`;
}

export async function submitCaptionBatch(
  deps: BulkDeps,
  req: z.output<typeof CaptionJobRequest>,
): Promise<{ id: string; shards: number; images: number }> {
  let info: DatasetInfo;
  try {
    info = await readDatasetInfo(deps.store, req.dataset);
  } catch (err) {
    if (err instanceof NotFoundError)
      throw new ApiProblem(404, "not_found", `no ingested dataset named "${req.dataset}"`);
    throw err;
  }
  const { shards, images } = selectShards(info, req.split);
  const batchId = newBatchId();
  const decode = { method: req.method, beamWidth: req.beamWidth };
  const batch: StoredBatch = {
    batchId,
    dataset: req.dataset,
    ...(req.split ? { split: req.split } : {}),
    model: req.model,
    shards,
    images,
    createdAt: new Date().toISOString(),
    decode,
  };
  // The batch and its counters are written before its jobs: a status request never finds jobs
  // without them.
  await putJson(deps.store, keys.captionBatch(batchId), batch);
  const { redis, prefix } = progressOf(deps);
  await initBulkProgress(redis, prefix, batchId, { shards: shards.length, images });
  // In slices: one addBulk of 13k shards (a 3.3M-image set) is one huge MULTI.
  for (let i = 0; i < shards.length; i += 1000)
    await deps.queue.addBulk(shards.slice(i, i + 1000).map((shardId) => shardJob(batch, shardId)));
  return { id: batchId, shards: shards.length, images };
}

/**
 * The shards a batch works on: all of them, or, for one split, only those holding some of its images
 * (ingest records each shard's split counts), so a `--split test` job of an 80/10/10 dataset does a
 * tenth of the work, not all of it.
 */
export function selectShards(
  info: DatasetInfo,
  split: Split | undefined,
): { shards: string[]; images: number } {
  if (!split) return { shards: info.shards, images: info.images };
  if (!info.shardSplits || info.shardSplits.length !== info.shards.length) {
    throw new ApiProblem(
      409,
      "needs_reingest",
      `dataset "${info.name}" was ingested before per-shard splits were recorded: ingest it again ` +
        `(nothing already stored or encoded is redone), or caption it without a split`,
    );
  }
  const column = { train: 0, val: 1, test: 2 }[split];
  const shards: string[] = [];
  let images = 0;
  info.shards.forEach((shardId, i) => {
    const n = info.shardSplits![i]![column] ?? 0;
    if (n > 0) {
      shards.push(shardId);
      images += n;
    }
  });
  return { shards, images };
}

function progressOf(deps: BulkDeps): { redis: BulkDeps["redis"]; prefix: string } {
  return { redis: deps.redis, prefix: deps.queue.opts.prefix ?? "bull" };
}

function shardJob(batch: StoredBatch, shardId: string) {
  const data: JobInput<"caption-bulk"> = {
    kind: "bulk-shard",
    batchId: batch.batchId,
    dataset: batch.dataset,
    shardId,
    shardKey: keys.shardList(batch.dataset, shardId),
    ...(batch.split ? { split: batch.split } : {}),
    model: batch.model,
    decode: batch.decode,
  };
  return {
    name: "bulk-shard",
    data,
    opts: { jobId: captionShardJobId(batch.batchId, shardId) },
  };
}

export async function readBatch(store: ObjectStore, batchId: string): Promise<StoredBatch> {
  if (!BATCH_ID.test(batchId)) throw new ApiProblem(404, "not_found", `no caption job ${batchId}`);
  try {
    return await getJson<StoredBatch>(store, keys.captionBatch(batchId));
  } catch (err) {
    if (err instanceof NotFoundError) throw new ApiProblem(404, "not_found", `no caption job ${batchId}`);
    throw err;
  }
}

type ShardState = "done" | "failed" | "waiting" | "active" | "missing";
interface ShardView {
  shardId: string;
  state: ShardState;
  job?: Job;
  reason?: string;
  captioned?: number;
}

async function shardViews(deps: BulkDeps, batch: StoredBatch): Promise<ShardView[]> {
  return Promise.all(
    batch.shards.map(async (shardId): Promise<ShardView> => {
      const job = await deps.queue.getJob(captionShardJobId(batch.batchId, shardId));
      if (!job) {
        // Removed by retention, cancelled, or lost with Redis: the store says whether it finished.
        const done = await deps.store.head(keys.captionShardResults(batch.batchId, shardId));
        return { shardId, state: done ? "done" : "missing" };
      }
      const state = await job.getState();
      switch (state) {
        case "completed":
          return {
            shardId,
            state: "done",
            job,
            captioned: (job.returnvalue as BulkShardResult | null)?.captioned,
          };
        case "failed":
          return { shardId, state: "failed", job, reason: job.failedReason || "failed" };
        case "active":
          return { shardId, state: "active", job };
        case "waiting":
        case "prioritized":
        case "delayed":
        case "waiting-children":
          return { shardId, state: "waiting", job };
        case "unknown":
          // Removed between the two reads (cancelled, or retention).
          return {
            shardId,
            state: (await deps.store.head(keys.captionShardResults(batch.batchId, shardId)))
              ? "done"
              : "missing",
          };
      }
    }),
  );
}

interface BatchCounts {
  shards: CaptionJobStatus["shards"];
  captioned: number;
  failures: CaptionJobStatus["failures"];
}

/**
 * Status from the batch's counters in Redis: one store read and one round trip of a constant number
 * of Redis commands per poll, whatever the number of shards. The per-shard scan of the queue is the
 * fallback for batches whose counters are gone (retention, a Redis that lost its data) and for
 * unfinished batches with no job left in the queue (a shard lost with its job).
 */
export async function captionBatchStatus(deps: BulkDeps, batchId: string): Promise<CaptionJobStatus> {
  const batch = await readBatch(deps.store, batchId);
  const { redis, prefix } = progressOf(deps);
  const progress = await readBulkProgress(redis, prefix, batchId);
  let counts: BatchCounts | undefined;
  if (progress) {
    const { total, done, active } = progress;
    const failed = progress.failed;
    counts = {
      shards: {
        total,
        done,
        failed,
        active: batch.cancelledAt ? 0 : active,
        waiting: batch.cancelledAt ? 0 : Math.max(0, total - done - failed - active),
      },
      captioned: Math.min(batch.images, progress.captioned),
      failures: progress.failures,
    };
    if (!batch.cancelledAt && done + failed < total && (await queueIsIdle(deps))) counts = undefined;
  }
  counts ??= countFromViews(batch, await shardViews(deps, batch));
  const { shards } = counts;
  let status: CaptionJobStatus["status"];
  let results: string | undefined;
  if (shards.done === shards.total) {
    status = "done";
    results = `/v1/caption-jobs/${batch.batchId}/results`;
  } else if (batch.cancelledAt) status = "cancelled";
  else if (shards.failed > 0 && shards.waiting + shards.active === 0) status = "failed";
  else if (shards.active > 0 || shards.done > 0 || shards.failed > 0) status = "running";
  else status = "queued";
  return {
    id: batch.batchId,
    status,
    dataset: batch.dataset,
    ...(batch.split ? { split: batch.split } : {}),
    model: batch.model,
    shards,
    images: batch.images,
    captioned: counts.captioned,
    failures: counts.failures,
    ...(results ? { results } : {}),
  };
}

/** No shard job of any batch waiting or running: a constant number of commands (queue-wide counts). */
async function queueIsIdle(deps: BulkDeps): Promise<boolean> {
  const c = await deps.queue.getJobCounts("waiting", "active", "delayed", "prioritized", "waiting-children");
  return Object.values(c).every((n) => n === 0);
}

function countFromViews(batch: StoredBatch, views: ShardView[]): BatchCounts {
  const count = (s: ShardState) => views.filter((v) => v.state === s).length;
  return {
    shards: {
      total: views.length,
      done: count("done"),
      failed: count("failed") + (batch.cancelledAt ? 0 : count("missing")),
      waiting: count("waiting"),
      active: count("active"),
    },
    captioned: Math.min(
      batch.images,
      views.reduce((n, v) => n + (v.captioned ?? 0), 0),
    ),
    failures: views
      .filter((v) => v.state === "failed" || (v.state === "missing" && !batch.cancelledAt))
      .map((v) => ({
        shardId: v.shardId,
        reason: v.reason ?? "the shard's job is gone from the queue without results (retry re-enqueues it)",
      })),
  };
}

/**
 * The results, streamed: each shard's JSONL in shard order, read one shard at a time. Nothing is
 * assembled in the API's memory or copied in the store (a 3.3M-image batch is ~0.5 GB of JSONL).
 */
export async function openCaptionBatchResults(deps: BulkDeps, batchId: string): Promise<Readable> {
  const status = await captionBatchStatus(deps, batchId);
  if (status.status !== "done") {
    throw new ApiProblem(
      409,
      "not_done",
      `caption job ${batchId} is ${status.status}: results come when every shard is done`,
    );
  }
  const batch = await readBatch(deps.store, batchId);
  const { store } = deps;
  return Readable.from(
    (async function* () {
      for (const shardId of batch.shards)
        yield* await store.getStream(keys.captionShardResults(batch.batchId, shardId));
    })(),
    { objectMode: false },
  );
}

/** Removes the shard jobs not yet started and marks the batch cancelled; running shards finish. */
export async function cancelCaptionBatch(deps: BulkDeps, batchId: string): Promise<CaptionJobStatus> {
  const batch = await readBatch(deps.store, batchId);
  if (!batch.cancelledAt) {
    await putJson(deps.store, keys.captionBatch(batchId), {
      ...batch,
      cancelledAt: new Date().toISOString(),
    });
  }
  for (const view of await shardViews(deps, batch)) {
    // remove() refuses a locked (active) job; one that started meanwhile simply finishes.
    if (view.state === "waiting") await view.job!.remove().catch(() => undefined);
  }
  return captionBatchStatus(deps, batchId);
}

/** Retries only the failed shards (and re-enqueues any whose job vanished without results). */
export async function retryCaptionBatch(
  deps: BulkDeps,
  batchId: string,
): Promise<CaptionJobStatus & { retried: number }> {
  const batch = await readBatch(deps.store, batchId);
  if (batch.cancelledAt) throw new ApiProblem(409, "cancelled", `caption job ${batchId} was cancelled`);
  let retried = 0;
  const { redis, prefix } = progressOf(deps);
  for (const view of await shardViews(deps, batch)) {
    if (view.state === "failed") {
      await markShardFailed(redis, prefix, batchId, view.shardId, undefined);
      await view.job!.retry("failed");
      retried++;
    } else if (view.state === "missing") {
      await markShardFailed(redis, prefix, batchId, view.shardId, undefined);
      const job = shardJob(batch, view.shardId);
      await deps.queue.add(job.name, job.data, job.opts);
      retried++;
    }
  }
  return { ...(await captionBatchStatus(deps, batchId)), retried };
}
