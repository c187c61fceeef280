import { createWorker, type Logger, type ObjectStore, type RedisClient } from "@capflow/common";
import { storeRange } from "../ingest/store-range.ts";

/** The `ingest` queue's worker: one range of a dataset's records per job (store-range.ts). */
export function createIngestWorker(opts: {
  store: ObjectStore;
  connection: RedisClient;
  prefix: string;
  log: Logger;
  /** Ranges worked at once. */
  concurrency: number;
  /** Images of a range read and stored at once. */
  imageConcurrency: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}): ReturnType<typeof createWorker> {
  return createWorker(
    "ingest",
    async (data, job, signal) => {
      const log = opts.log.child({ queue: "ingest", jobId: job.id });
      const result = await storeRange(opts.store, data, {
        concurrency: opts.imageConcurrency,
        signal,
        onProgress: (records) => void job.updateProgress(records).catch(() => {}),
      });
      log.info({ range: data.range, ...result }, "range stored");
      return result;
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      ...(opts.lockDurationMs ? { lockDuration: opts.lockDurationMs } : {}),
      ...(opts.stalledIntervalMs ? { stalledInterval: opts.stalledIntervalMs } : {}),
    },
  );
}
