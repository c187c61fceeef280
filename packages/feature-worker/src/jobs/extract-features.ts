import { randomUUID } from "node:crypto";
import type { Worker } from "bullmq";
import type { RedisClient } from "@capflow/common";
import {
  createWorker,
  FAILURE_REASONS,
  metrics,
  putJson,
  type JobData,
  type Logger,
  type NpyDtype,
  type ObjectStore,
} from "@capflow/common";
import type { Encoder } from "@capflow/ml";
import { AttemptTracker, planAttempt, type CrashRecord } from "../crash-isolation.ts";
import { redisCrashJournal, type CrashJournal } from "../crash-journal.ts";
import { IsolationGate } from "../isolation-gate.ts";
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
  connection: RedisClient;
  prefix: string;
  log: Logger;
  batchSize: number;
  concurrency: number;
  dtype: NpyDtype;
  maxPixels: number;
  /** Default: the Redis one on `connection` (../crash-journal.ts). */
  journal?: CrashJournal;
  /** Default: one per worker (../isolation-gate.ts). */
  gate?: IsolationGate;
  /** BullMQ lock; default 60 s (see createFeatureWorker). */
  lockDurationMs?: number;
  /** BullMQ stalled-job check interval; default BullMQ's 30 s. */
  stalledIntervalMs?: number;
}

/** Which attempt of which job this is (a BullMQ job, or a test's stand-in). */
export interface JobAttempt {
  id: string;
  /** BullMQ's count of this job's stalls (lock lost: the worker died or froze). */
  stalledCounter: number;
}

/** The attempt lost its job to a newer one (it was paused past its lock): it must stop, writing nothing. */
export class LostJobError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was taken over by a newer attempt (this one lost its lock)`);
    this.name = "LostJobError";
  }
}

/** The `features` job: one shard of images in, one shard of vectors (or quarantined images) out. */
export async function extractFeatures(
  deps: FeatureWorkerDeps & { journal: CrashJournal; gate: IsolationGate },
  data: JobData<"features">,
  job: JobAttempt,
  report: (p: number) => Promise<void>,
  signal: AbortSignal,
) {
  const { store, encoder, log, journal } = deps;
  // Outputs are keyed by content: a redone job (lost lock, killed worker, re-ingest) finds the
  // committed index and does nothing twice.
  if (await shardDone(store, encoder.id, data.dataset, data.shardId)) {
    await journal.clear(job.id);
    shards.inc({ status: "skipped" });
    return { skipped: true };
  }
  const shard = await readShardList(store, data.shardKey);

  // Crash isolation (../crash-isolation.ts): what did the last attempt leave in flight?
  const owner = randomUUID();
  const plan = planAttempt(
    await journal.claim(job.id, owner),
    shard.images.map((img) => img.id),
  );
  const tracker = new AttemptTracker(plan.record);
  const write = async (record: CrashRecord) => {
    if (!(await journal.write(job.id, owner, record))) throw new LostJobError(job.id);
  };
  await write(tracker.current());
  if (plan.died || plan.quarantine.length > 0 || job.stalledCounter > 0)
    log.warn(
      {
        shardId: data.shardId,
        deaths: plan.record.deaths,
        stalledCounter: job.stalledCounter,
        suspects: plan.alone.length,
        crashedWorker: plan.quarantine.map((f) => f.id),
      },
      plan.died
        ? "the shard's last attempt died mid-shard: running the images it had in flight one at a time"
        : "shard redone after a stall",
    );

  let result: Awaited<ReturnType<typeof extractShard>>;
  try {
    result = await extractShard(store, encoder, shard, {
      batchSize: deps.batchSize,
      maxPixels: deps.maxPixels,
      signal,
      alone: plan.alone,
      quarantine: plan.quarantine,
      gate: deps.gate,
      beforeRead: (ids, alone) => write(tracker.inflight(ids, alone)),
      onBatch: ({ seconds, done, total }) => {
        batchSeconds.observe({ runtime: encoder.runtime }, seconds);
        void report(Math.round((done / total) * 100)).catch(() => undefined);
      },
      onImage: (status) =>
        images.inc({ status: status === "ok" ? "ok" : "failed", reason: status === "ok" ? "" : status }),
    });
  } catch (err) {
    // The process survived this error: nothing in flight crashed it. Keep the suspects and strikes
    // for the retry, but do not count a death.
    if (!(err instanceof LostJobError))
      await journal.write(job.id, owner, tracker.close(false)).catch(() => undefined);
    throw err;
  }
  // Still ours? Then commit. A paused attempt that lost its lock stops here instead of racing the
  // attempt that took over (their bytes would agree, but one writer is simpler to reason about).
  await write(tracker.close(true));
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
      ...(result.views ? { views: { recipe: result.views.recipe, rows: result.views.rows } } : {}),
    },
    result.vectors,
    result.views?.vectors,
  );
  await journal.clear(job.id, owner);
  shards.inc({ status: "done" });
  if (result.failures.length > 0)
    log.warn({ shardId: data.shardId, failures: result.failures.length }, "images quarantined");
  return {
    vectors: result.ids.length,
    ...(result.views ? { views: result.views.rows.length } : {}),
    failures: result.failures.length,
    ...(plan.quarantine.length > 0 ? { crashedWorker: plan.quarantine.length } : {}),
  };
}

export function createFeatureWorker(deps: FeatureWorkerDeps): Worker {
  // Every reason at zero from the start, so that rate() and increase() see the first quarantine.
  for (const reason of FAILURE_REASONS) images.inc({ status: "failed", reason }, 0);
  const full = {
    ...deps,
    journal: deps.journal ?? redisCrashJournal(deps.connection, deps.prefix),
    gate: deps.gate ?? new IsolationGate(),
  };
  return createWorker(
    "features",
    async (data, job, signal) => {
      const log = deps.log.child({ queue: "features", jobId: job.id });
      const started = performance.now();
      const out = await extractFeatures(
        { ...full, log },
        data,
        { id: job.id!, stalledCounter: job.stalledCounter },
        (p) => job.updateProgress(p),
        signal,
      );
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
      lockDuration: deps.lockDurationMs ?? 60_000,
      ...(deps.stalledIntervalMs !== undefined ? { stalledInterval: deps.stalledIntervalMs } : {}),
      // maxStalledCount comes from the job catalog (packages/common/src/queue/jobs.ts).
    },
  );
}

/** Lets ingest (and operators) know which encoder the workers run, to count shards already done. */
export async function announceEncoder(store: ObjectStore, encoder: Encoder): Promise<void> {
  await putJson(store, "encoders/current.json", {
    id: encoder.id,
    runtime: encoder.runtime,
    backend: encoder.backend,
    ...(encoder.quality ? { quality: encoder.quality } : {}),
  });
}
