import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { QUEUE_STATES } from "../ops/queue-metrics.ts";
import { waitReady } from "./redis.ts";

/**
 * Operator actions on a queue, shared by `capflow queue ...` and the API's `/admin/api/...` routes.
 * Plain functions over a BullMQ `Queue` and the producer Redis connection: no payloads are ever
 * returned (job data sits in Redis in clear text and may carry user keys), only ids and reasons.
 */

/** The Redis key a worker pool polls for its concurrency (see `watchConcurrency`). */
export const concurrencyKey = (prefix: string, queueName: string) =>
  `capflow:${prefix}:concurrency:${queueName}`;

export interface QueueStats {
  queue: string;
  paused: boolean;
  workers: number;
  /** The concurrency override workers apply, or null when they run their configured default. */
  concurrency: number | null;
  counts: Record<(typeof QUEUE_STATES)[number], number>;
}

export async function queueStats(queue: Queue, redis: Redis, prefix: string): Promise<QueueStats> {
  const [counts, paused, workers, concurrency] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    queue.isPaused(),
    queue.getWorkersCount(),
    getConcurrency(redis, prefix, queue.name),
  ]);
  const full = Object.fromEntries(QUEUE_STATES.map((s) => [s, counts[s] ?? 0])) as QueueStats["counts"];
  return { queue: queue.name, paused, workers, concurrency, counts: full };
}

/** Pauses the queue globally: workers finish their active jobs and take no new ones. */
export async function pauseQueue(queue: Queue): Promise<void> {
  await queue.pause();
}

export async function resumeQueue(queue: Queue): Promise<void> {
  await queue.resume();
}

export interface FailedJob {
  id: string;
  name: string;
  reason: string;
  attemptsMade: number;
  failedAt: string | null;
  enqueuedAt: string;
}

/** Failed jobs, newest first, with their failure reason (first line only; no stack, no payload). */
export async function listFailed(
  queue: Queue,
  opts: { offset?: number; limit?: number } = {},
): Promise<FailedJob[]> {
  const offset = Math.max(0, opts.offset ?? 0);
  const limit = Math.min(1000, Math.max(1, opts.limit ?? 50));
  const jobs = await queue.getFailed(offset, offset + limit - 1);
  return jobs.map((job) => ({
    id: String(job.id),
    name: job.name,
    reason: (job.failedReason ?? "").split("\n")[0]!.slice(0, 500),
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    enqueuedAt: new Date(job.timestamp).toISOString(),
  }));
}

/**
 * Moves failed jobs (only those) back to wait, in batches. Returns how many were failed when it
 * started; jobs that fail again meanwhile are not retried twice in one call.
 */
export async function retryFailed(queue: Queue): Promise<{ retried: number }> {
  const failed = await queue.getFailedCount();
  if (failed > 0) await queue.retryJobs({ state: "failed", count: 1000 });
  return { retried: failed };
}

export const CLEANABLE_STATES = ["completed", "failed", "delayed", "wait", "prioritized"] as const;
export type CleanableState = (typeof CLEANABLE_STATES)[number];

/**
 * Removes jobs in `state` that finished (or were added) more than `olderThanMs` ago, at most `limit`
 * per call (0 = all). Active jobs are never cleaned: they belong to a running worker.
 */
export async function cleanJobs(
  queue: Queue,
  opts: { state: CleanableState; olderThanMs: number; limit?: number },
): Promise<{ removed: number }> {
  const ids = await queue.clean(opts.olderThanMs, opts.limit ?? 0, opts.state);
  return { removed: ids.length };
}

/** Sets (or with `null` clears) the concurrency that the queue's workers apply within a few seconds. */
export async function setConcurrency(
  redis: Redis,
  prefix: string,
  queueName: string,
  concurrency: number | null,
): Promise<void> {
  const key = concurrencyKey(prefix, queueName);
  // Producer connections fail fast instead of queueing commands: wait until this one is up.
  await waitReady(redis);
  if (concurrency === null) {
    await redis.del(key);
    return;
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
    throw new RangeError(`concurrency must be an integer from 1 to 1024, got ${concurrency}`);
  }
  await redis.set(key, String(concurrency));
}

export async function getConcurrency(
  redis: Redis,
  prefix: string,
  queueName: string,
): Promise<number | null> {
  await waitReady(redis);
  return parseConcurrency(await redis.get(concurrencyKey(prefix, queueName)));
}

export function parseConcurrency(raw: string | null): number | null {
  if (raw === null) return null;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 1024 ? n : null;
}
