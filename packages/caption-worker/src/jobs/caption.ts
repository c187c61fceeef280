import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { createWorker, metrics, type Logger, type ObjectStore } from "@capflow/common";
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
  connection: Redis;
  prefix: string;
  log: Logger;
  concurrency: number;
  maxPixels: number;
}

/** The `captions` queue: single images (online, high priority) and bulk shards. */
export function createCaptionWorker(deps: CaptionWorkerDeps): Worker {
  for (const kind of ["image", "bulk-shard"])
    for (const status of ["ok", "failed"]) outcomes.inc({ kind, status }, 0);
  return createWorker(
    "captions",
    async (data, job, signal) => {
      try {
        const out =
          data.kind === "image"
            ? await captionImage(deps.captioner, deps.store, data, job.timestamp, deps.maxPixels)
            : await captionShard(deps.captioner, deps.store, data, signal);
        latency.observe({ kind: data.kind }, (Date.now() - job.timestamp) / 1000);
        outcomes.inc({ kind: data.kind, status: "ok" });
        return out;
      } catch (err) {
        outcomes.inc({ kind: data.kind, status: "failed" });
        deps.log.warn({ jobId: job.id, kind: data.kind, err: (err as Error).message }, "caption job failed");
        throw err;
      }
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: deps.concurrency },
  );
}
