import path from "node:path";
import {
  ingestRangeJobId,
  keys,
  type JobInput,
  type ObjectStore,
  type RedisClient,
  type TypedQueue,
} from "@capflow/common";
import { DatasetReadError } from "../datasets/index.ts";
import { DatasetWriter, type IngestSummary } from "./dataset-writer.ts";
import { prepareIngest, type IngestOptions } from "./ingest-dataset.ts";
import { enumerateRanges } from "./enumerate-ranges.ts";
import { readRangePart } from "./store-range.ts";
import { claimFirst, seenKey } from "./seen-ids.ts";

export interface DistributedIngestOptions extends Omit<IngestOptions, "concurrency"> {
  /** Records per ingest job (default 10,000: a part of ~9 MB with 5 captions an image). */
  rangeSize?: number;
  /** How often the waiting command looks at the parts (default 1 s). */
  pollMs?: number;
  /** Called once the ranges are enqueued. */
  onEnqueued?: (p: { runId: string; ranges: number; enqueued: number }) => void;
}

export interface DistributedIngestDeps {
  store: ObjectStore;
  features: TypedQueue<"features">;
  ingest: TypedQueue<"ingest">;
  redis: RedisClient;
  prefix: string;
}

export interface DistributedIngestSummary extends IngestSummary {
  runId: string;
  ranges: number;
}

/**
 * `capflow ingest --distribute`: the dataset becomes `ingest` jobs, one per range of records, that any
 * number of `capflow worker ingest` processes (on any machine that sees the folder at the same path)
 * work: they read, hash and store the images, the part of ingest that grows with the data. This
 * command enumerates the records (caption files only, no image touched), waits for the ranges' parts, and
 * assembles them in dataset order through the same DatasetWriter as a one-process ingest, so the
 * manifest, shard lists and feature jobs are the same bytes; duplicate files are folded through Redis
 * (seen-ids.ts). Resubmitting is a no-op: the run id is the dataset's content, job ids are the run's
 * ranges, and a range whose part is in the store is done.
 */
export async function ingestDistributed(
  deps: DistributedIngestDeps,
  opts: DistributedIngestOptions,
): Promise<DistributedIngestSummary> {
  const { store } = deps;
  const { augmentViews, encoderId } = await prepareIngest(store, opts);
  const dir = path.resolve(opts.dir);
  const plan = await enumerateRanges(dir, opts);
  const runId = plan.runId;
  const total = plan.ranges.at(-1)?.end ?? 0;
  const jobs = plan.ranges.map((r): { name: string; data: JobInput<"ingest">; opts: { jobId: string } } => ({
    name: "range",
    data: { runId, dataset: opts.dataset, format: opts.format, dir, ...r },
    opts: { jobId: ingestRangeJobId(runId, r.range) },
  }));

  // Enqueue what is neither done (its part is in the store) nor queued; a failed range is retried.
  const done = await doneRanges(store, runId);
  let enqueued = 0;
  for (const job of jobs) {
    if (done.has(job.data.range)) continue;
    if (await enqueueRange(deps.ingest, job)) enqueued++;
  }
  opts.onEnqueued?.({ runId, ranges: jobs.length, enqueued });

  // Wait for every part. The store is the truth (one LIST a poll). Every few polls, when the queue
  // has failed jobs or none waiting or running (a constant number of Redis calls to know), the jobs of
  // the missing ranges are looked at: a failed one stops the command, a vanished one (retention, a
  // Redis flush) is enqueued again.
  const pollMs = opts.pollMs ?? 1_000;
  for (let poll = 0; ; poll++) {
    const now = await doneRanges(store, runId);
    const records = plan.ranges.reduce((n, r) => n + (now.has(r.range) ? r.end - r.start : 0), 0);
    opts.onProgress?.({ images: records, total });
    if (now.size === jobs.length) break;
    if (poll % 5 === 4 && (await needsLook(deps.ingest))) {
      for (const job of jobs) {
        if (now.has(job.data.range)) continue;
        const existing = await deps.ingest.getJob(job.opts.jobId);
        const state = existing ? await existing.getState() : "missing";
        if (state === "failed")
          throw new Error(
            `ingest range ${job.data.range} (records ${job.data.start}-${job.data.end - 1}) failed: ` +
              `${existing?.failedReason ?? "unknown"}; run the command again to retry it`,
          );
        if (state === "missing" || state === "unknown") await enqueueRange(deps.ingest, job);
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }

  const writer = await DatasetWriter.open(store, deps.features, {
    dataset: opts.dataset,
    format: opts.format,
    shardSize: opts.shardSize,
    augmentViews,
    encoderId,
  });
  Object.assign(writer.summary.issues, plan.issues);
  const seen = seenKey(deps.prefix, runId);
  try {
    for (const r of plan.ranges) {
      const part = await readRangePart(store, runId, r.range);
      for (const issue of part.issues) {
        writer.summary.issues[issue.kind]++;
        opts.onIssue?.(issue);
        // As a one-process ingest does: stop before the manifest is written.
        if (opts.onError === "fail" && issue.kind !== "skipped") throw new DatasetReadError(issue);
      }
      const first = await claimFirst(
        deps.redis,
        seen,
        part.records.map((rec, i) => ({ id: rec.id, position: r.start + i })),
      );
      for (const [i, rec] of part.records.entries()) await writer.add(rec, first[i]!);
    }
    const summary = await writer.finish();
    // The run is done: its parts and claims are no longer needed (a rerun enumerates a new one).
    for await (const { key } of store.list(keys.ingestRunPrefix(runId))) await store.delete(key);
    await deps.redis.del(seen);
    return { ...summary, runId, ranges: jobs.length };
  } finally {
    await writer.dispose();
  }
}

/** Whether a range may have failed or vanished: failed jobs, or nothing left to work on. */
async function needsLook(queue: TypedQueue<"ingest">): Promise<boolean> {
  const c = await queue.getJobCounts("failed", "waiting", "active", "delayed", "prioritized");
  const pending = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
  return (c.failed ?? 0) > 0 || pending === 0;
}

async function doneRanges(store: ObjectStore, runId: string): Promise<Set<number>> {
  const done = new Set<number>();
  for await (const { key } of store.list(keys.ingestRunPrefix(runId))) {
    const m = /part-(\d+)\.json$/.exec(key);
    if (m) done.add(Number(m[1]));
  }
  return done;
}

/** Adds a range's job unless it is queued or running; a failed or finished one is replaced. */
async function enqueueRange(
  queue: TypedQueue<"ingest">,
  job: { name: string; data: JobInput<"ingest">; opts: { jobId: string } },
): Promise<boolean> {
  const existing = await queue.getJob(job.opts.jobId);
  if (existing) {
    const state = await existing.getState();
    if (state !== "failed" && state !== "completed") return false;
    // Completed without a part in the store (it was deleted), or failed: do it again.
    await existing.remove();
  }
  await queue.add(job.name, job.data, job.opts);
  return true;
}
