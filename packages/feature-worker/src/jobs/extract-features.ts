import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import {
  createWorker,
  metrics,
  putJson,
  type JobData,
  type Logger,
  type NpyDtype,
  type ObjectStore,
} from "@capflow/common";
import type { Encoder } from "@capflow/common";
import { shardDone, writeShard } from "../shard-writer.ts";
import { extractShard, readShardList } from "./extract-shard.ts";

const images = metrics.counter("capflow_feature_images_total", "Images processed, by outcome", [
  "status",
  "reason",
]);
const batchSeconds = metrics.histogram(
  "capflow_feature_batch_seconds",
  "Encoder time per batch",
  ["runtime"],
  [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
);
const shards = metrics.counter("capflow_feature_shards_total", "Shards finished, by outcome", ["status"]);

export interface FeatureWorkerDeps {
  store: ObjectStore;
  encoder: Encoder;
  connection: Redis;
  prefix: string;
  log: Logger;
  batchSize: number;
  concurrency: number;
  dtype: NpyDtype;
  maxPixels: number;
}

/** The `features` job: one shard of images in, one shard of vectors (or quarantined images) out. */
export async function extractFeatures(
  deps: FeatureWorkerDeps,
  data: JobData<"features">,
  report: (p: number) => Promise<void>,
  signal: AbortSignal,
) {
  const { store, encoder, log } = deps;
  // Outputs are keyed by content: a redone job (lost lock, killed worker, re-ingest) finds the
  // committed index and does nothing twice.
  if (await shardDone(store, encoder.id, data.dataset, data.shardId)) {
    shards.inc({ status: "skipped" });
    return { skipped: true };
  }
  const shard = await readShardList(store, data.shardKey);
  const result = await extractShard(store, encoder, shard, {
    batchSize: deps.batchSize,
    maxPixels: deps.maxPixels,
    signal,
    onBatch: ({ seconds, done, total }) => {
      batchSeconds.observe({ runtime: encoder.runtime }, seconds);
      void report(Math.round((done / total) * 100)).catch(() => undefined);
    },
    onImage: (status) =>
      images.inc({ status: status === "ok" ? "ok" : "failed", reason: status === "ok" ? "" : status }),
  });
  await writeShard(
    store,
    {
      encoderId: encoder.id,
      dataset: data.dataset,
      shardId: data.shardId,
      dtype: deps.dtype,
      dim: encoder.dim,
      ids: result.ids,
      failures: result.failures,
    },
    result.vectors,
  );
  shards.inc({ status: "done" });
  if (result.failures.length > 0)
    log.warn({ shardId: data.shardId, failures: result.failures.length }, "images quarantined");
  return { vectors: result.ids.length, failures: result.failures.length };
}

export function createFeatureWorker(deps: FeatureWorkerDeps): Worker {
  return createWorker(
    "features",
    async (data, job, signal) => {
      const log = deps.log.child({ queue: "features", jobId: job.id });
      const started = performance.now();
      const out = await extractFeatures({ ...deps, log }, data, (p) => job.updateProgress(p), signal);
      log.info({ ...out, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) }, "shard done");
      return out;
    },
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: deps.concurrency,
      // ONNX Runtime and sharp run off the event loop, so lock renewal keeps ticking during a shard.
      // The tfjs-wasm fallback blocks the loop for one batch at a time: ~0.5 s/image measured here,
      // 4 s for a batch of 8, well inside this lock.
      lockDuration: 60_000,
    },
  );
}

/** Lets ingest (and operators) know which encoder the workers run, to count shards already done. */
export async function announceEncoder(store: ObjectStore, encoder: Encoder): Promise<void> {
  await putJson(store, "encoders/current.json", {
    id: encoder.id,
    runtime: encoder.runtime,
    backend: encoder.backend,
  });
}
