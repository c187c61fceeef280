import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import type { Job } from "bullmq";
import type { z } from "zod";
import {
  captionShardJobId,
  getJson,
  keys,
  NotFoundError,
  putJson,
  readDatasetInfo,
  readManifest,
  type BulkResultLine,
  type BulkShardResult,
  type CaptionBatch,
  type DatasetInfo,
  type JobInput,
  type ObjectStore,
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
}

/** batch.json as this module writes it: the catalog's CaptionBatch plus cancellation. */
export type StoredBatch = CaptionBatch & { cancelledAt?: string };
export type CaptionJobStatus = z.infer<typeof CaptionJobStatusSchema>;

/** The assembly's counts, written next to results.jsonl (exact for split-filtered batches). */
interface ResultsSummary {
  lines: number;
  captioned: number;
  failed: number;
}
const summaryKey = (batchId: string) => `captions/${batchId}/summary.json`;

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
  const batchId = newBatchId();
  const images = req.split ? info.splits[req.split] : info.images;
  const decode = { method: req.method, beamWidth: req.beamWidth };
  const batch: StoredBatch = {
    batchId,
    dataset: req.dataset,
    ...(req.split ? { split: req.split } : {}),
    model: req.model,
    shards: info.shards,
    images,
    createdAt: new Date().toISOString(),
    decode,
  };
  // The batch is written before its jobs: a status request never finds jobs without their batch.
  await putJson(deps.store, keys.captionBatch(batchId), batch);
  await deps.queue.addBulk(info.shards.map((shardId) => shardJob(batch, shardId)));
  return { id: batchId, shards: info.shards.length, images };
}

function shardJob(batch: StoredBatch, shardId: string) {
  const data: JobInput<"caption-bulk"> = {
    kind: "bulk-shard",
    batchId: batch.batchId,
    dataset: batch.dataset,
    shardId,
    shardKey: keys.shardList(batch.dataset, shardId),
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

/** Status from the shard jobs' states; once every shard is done, assembles the results (once). */
export async function captionBatchStatus(deps: BulkDeps, batchId: string): Promise<CaptionJobStatus> {
  const batch = await readBatch(deps.store, batchId);
  const views = await shardViews(deps, batch);
  const count = (s: ShardState) => views.filter((v) => v.state === s).length;
  const shards = {
    total: views.length,
    done: count("done"),
    failed: count("failed") + (batch.cancelledAt ? 0 : count("missing")),
    waiting: count("waiting"),
    active: count("active"),
  };
  const failures = views
    .filter((v) => v.state === "failed" || (v.state === "missing" && !batch.cancelledAt))
    .map((v) => ({
      shardId: v.shardId,
      reason: v.reason ?? "the shard's job is gone from the queue without results (retry re-enqueues it)",
    }));
  let status: CaptionJobStatus["status"];
  let captioned = Math.min(
    batch.images,
    views.reduce((n, v) => n + (v.captioned ?? 0), 0),
  );
  let results: string | undefined;
  if (shards.done === shards.total) {
    const summary = await assembleResults(deps.store, batch);
    captioned = summary.captioned;
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
    captioned,
    failures,
    ...(results ? { results } : {}),
  };
}

/**
 * Concatenates the shard JSONLs in shard order into results.jsonl (keeping only the batch's split),
 * once. Idempotent: a second caller (or a race) writes the same bytes.
 */
export async function assembleResults(store: ObjectStore, batch: StoredBatch): Promise<ResultsSummary> {
  const existing = await getJson<ResultsSummary>(store, summaryKey(batch.batchId)).catch(() => undefined);
  if (existing && (await store.head(keys.captionResults(batch.batchId)))) return existing;
  let keep: Set<string> | undefined;
  if (batch.split) {
    keep = new Set();
    for await (const row of readManifest(store, batch.dataset))
      if (row.split === batch.split) keep.add(row.id);
  }
  const parts: Buffer[] = [];
  const summary: ResultsSummary = { lines: 0, captioned: 0, failed: 0 };
  for (const shardId of batch.shards) {
    const text = (await store.get(keys.captionShardResults(batch.batchId, shardId))).toString("utf8");
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const row = JSON.parse(line) as BulkResultLine;
      if (keep && !keep.has(row.id)) continue;
      summary.lines++;
      if (row.error) summary.failed++;
      else summary.captioned++;
      parts.push(Buffer.from(`${line}\n`));
    }
  }
  await store.put(keys.captionResults(batch.batchId), Buffer.concat(parts), {
    contentType: "application/x-ndjson",
  });
  // The summary is written last: its presence with results.jsonl marks a finished assembly.
  await putJson(store, summaryKey(batch.batchId), summary);
  return summary;
}

export async function openCaptionBatchResults(deps: BulkDeps, batchId: string): Promise<Readable> {
  const status = await captionBatchStatus(deps, batchId);
  if (status.status !== "done") {
    throw new ApiProblem(
      409,
      "not_done",
      `caption job ${batchId} is ${status.status}: results come when every shard is done`,
    );
  }
  return deps.store.getStream(keys.captionResults(batchId));
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
  for (const view of await shardViews(deps, batch)) {
    if (view.state === "failed") {
      await view.job!.retry("failed");
      retried++;
    } else if (view.state === "missing") {
      const job = shardJob(batch, view.shardId);
      await deps.queue.add(job.name, job.data, job.opts);
      retried++;
    }
  }
  return { ...(await captionBatchStatus(deps, batchId)), retried };
}
