import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { createWorker, type Logger, type ObjectStore, type Tf } from "@capflow/common";
import { trainRun } from "./train-run.ts";

export interface TrainerWorkerDeps {
  store: ObjectStore;
  tf: Tf;
  connection: Redis;
  prefix: string;
  log: Logger;
}

/**
 * The `training` job: one run. A trainer killed mid-run loses its lock; BullMQ hands the job to the
 * next trainer, which resumes from the newest complete checkpoint.
 */
export function createTrainerWorker(deps: TrainerWorkerDeps): Worker {
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
      lockDuration: 120_000,
    },
  );
}
