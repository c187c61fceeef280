import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { createWorker, type Logger, type ObjectStore } from "@capflow/common";
import { type Tf } from "@capflow/ml";
import { trainRun } from "../run/train-run.ts";

export interface TrainerWorkerDeps {
  store: ObjectStore;
  tf: Tf;
  connection: Redis;
  prefix: string;
  log: Logger;
  /** The job's lock (default 120 s); see `CAPFLOW_TRAINER_LOCK_SECONDS`. */
  lockSeconds?: number;
}

/**
 * The `training` job: one run. A trainer killed mid-run loses its lock; BullMQ hands the job to the
 * next trainer, which resumes from the newest complete checkpoint.
 */
export function createTrainerWorker(deps: TrainerWorkerDeps): Worker {
  const lockDuration = (deps.lockSeconds ?? 120) * 1000;
  return createWorker(
    "training",
    async (spec, job, signal) => {
      const log = deps.log.child({ queue: "training", jobId: job.id, runId: spec.runId });
      return trainRun(
        { store: deps.store, tf: deps.tf, log, signal, onProgress: (p) => job.updateProgress(p) },
        spec,
      );
    },
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: 1,
      // Training yields to the event loop between batches (one batch is ~1 s on wasm), so the
      // default renewal works; a longer lock only delays the hand-over after a real crash.
      lockDuration,
      // A killed trainer's job is seen as stalled by two checks, the second after its lock expired:
      // checking at a quarter of the lock keeps the hand-over near the lock (the default 120 s lock
      // keeps BullMQ's default 30 s interval).
      stalledInterval: lockDuration / 4,
    },
  );
}
