import { CommonEnv, envInt, serveWorker, startRuntime } from "@capflow/common";
import { createIngestWorker } from "./jobs/ingest-range.ts";

export const IngestWorkerEnv = CommonEnv.extend({
  CAPFLOW_INGEST_CONCURRENCY: envInt(1, 64).default(1),
  // As many HEAD + PUT in flight as the one-process ingest keeps (16).
  CAPFLOW_INGEST_IMAGE_CONCURRENCY: envInt(1, 256).default(16),
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(600),
  // How soon a range whose worker died is redone: its lock must expire, then a stalled check must see
  // it. BullMQ's defaults (30 s, 30 s); tests that kill workers on purpose shorten both.
  CAPFLOW_INGEST_LOCK_SECONDS: envInt(2, 3600).default(30),
  CAPFLOW_INGEST_STALLED_INTERVAL_SECONDS: envInt(1, 3600).default(30),
});

/** `capflow worker ingest`: stores the images of ranges of datasets that `capflow ingest --distribute` enqueued. */
export async function main(): Promise<void> {
  const rt = await startRuntime("ingest-worker", IngestWorkerEnv);
  const worker = createIngestWorker({
    store: rt.store,
    connection: rt.workerConnection(),
    prefix: rt.prefix,
    log: rt.log,
    concurrency: rt.env.CAPFLOW_INGEST_CONCURRENCY,
    imageConcurrency: rt.env.CAPFLOW_INGEST_IMAGE_CONCURRENCY,
    lockDurationMs: rt.env.CAPFLOW_INGEST_LOCK_SECONDS * 1000,
    stalledIntervalMs: rt.env.CAPFLOW_INGEST_STALLED_INTERVAL_SECONDS * 1000,
  });
  await serveWorker(rt, "ingest", worker);
}
