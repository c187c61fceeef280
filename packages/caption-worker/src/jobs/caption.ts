import type { Job, Worker } from "bullmq";
import { UnrecoverableError } from "bullmq";
import {
  createWorker,
  markShardActive,
  markShardDone,
  markShardFailed,
  metrics,
  type Logger,
  type ObjectStore,
  type RedisClient,
} from "@capflow/common";
import type { Captioner } from "../captioner.ts";
import { captionImage } from "./caption-image.ts";
import { captionShard } from "./caption-shard.ts";

const latency = metrics.histogram(
  "capflow_caption_latency_seconds",
  "Time from enqueue to answer, by job kind",
  ["kind"],
  [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
);
const outcomes = metrics.counter("capflow_caption_jobs_total", "Caption jobs finished, by kind and outcome", [
  "kind",
  "status",
]);

export interface CaptionWorkerDeps {
  captioner: Captioner;
  store: ObjectStore;
  connection: RedisClient;
  prefix: string;
  log: Logger;
  concurrency: number;
  maxPixels: number;
}

/** The `captions` queue: single images, online (someone waits for each answer). */
export function createCaptionWorker(deps: CaptionWorkerDeps): Worker {
  for (const status of ["ok", "failed"]) outcomes.inc({ kind: "image", status }, 0);
  return createWorker(
    "captions",
    (data, job) =>
      observed(deps, "image", job, () =>
        captionImage(deps.captioner, deps.store, data, job.timestamp, deps.maxPixels),
      ),
    { connection: deps.connection, prefix: deps.prefix, concurrency: deps.concurrency },
  );
}

/**
 * The `caption-bulk` queue: a shard of a bulk job per job. Its own few slots (`concurrency`) beside the
 * online ones, so shards never hold the slots single requests need.
 */
export function createBulkCaptionWorker(deps: Omit<CaptionWorkerDeps, "maxPixels">): Worker {
  for (const status of ["ok", "failed"]) outcomes.inc({ kind: "bulk-shard", status }, 0);
  return createWorker(
    "caption-bulk",
    (data, job, signal) =>
      observed(deps, "bulk-shard", job, async () => {
        // Progress counters for the batch's status (O(1) per poll, common bulk-progress.ts).
        const { connection: redis, prefix } = deps;
        await markShardActive(redis, prefix, data.batchId, data.shardId);
        try {
          const result = await captionShard(deps.captioner, deps.store, data, signal);
          await markShardDone(redis, prefix, data.batchId, data.shardId, result);
          return result;
        } catch (err) {
          const last = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          // A shard with attempts left goes back to waiting: it is neither active nor failed.
          await markShardFailed(
            redis,
            prefix,
            data.batchId,
            data.shardId,
            last ? (err as Error).message : undefined,
          );
          throw err;
        }
      }),
    { connection: deps.connection, prefix: deps.prefix, concurrency: deps.concurrency },
  );
}

/**
 * A caption worker process's two BullMQ workers: online requests (`concurrency` slots) and bulk
 * shards (`bulkConcurrency` slots), each on its own blocking connection from `connect`.
 */
export function createCaptionWorkers(
  deps: Omit<CaptionWorkerDeps, "connection" | "concurrency"> & {
    connect: () => RedisClient;
    concurrency: number;
    bulkConcurrency: number;
  },
): { online: Worker; bulk: Worker } {
  const { connect, bulkConcurrency, ...rest } = deps;
  return {
    online: createCaptionWorker({ ...rest, connection: connect() }),
    bulk: createBulkCaptionWorker({ ...rest, connection: connect(), concurrency: bulkConcurrency }),
  };
}

async function observed<T>(
  deps: { log: Logger },
  kind: "image" | "bulk-shard",
  job: Job,
  run: () => Promise<T>,
): Promise<T> {
  try {
    const out = await run();
    latency.observe({ kind }, (Date.now() - job.timestamp) / 1000);
    outcomes.inc({ kind, status: "ok" });
    return out;
  } catch (err) {
    outcomes.inc({ kind, status: "failed" });
    deps.log.warn({ jobId: job.id, kind, err: (err as Error).message }, "caption job failed");
    throw err;
  }
}
