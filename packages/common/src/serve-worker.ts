import type { Worker } from "bullmq";
import { watchConcurrency } from "./queue/watch-concurrency.ts";
import { instrumentWorker, registerQueueDepthMetrics } from "./ops/queue-metrics.ts";
import type { QueueName } from "./queue/jobs.ts";
import { workerLiveness } from "./queue/liveness.ts";
import { createQueue } from "./queue/queues.ts";
import type { Runtime } from "./runtime.ts";

/**
 * What every worker process does around its BullMQ worker: logs its errors (never lost), counts its
 * jobs, exposes its queue's depth, follows run-time concurrency changes, serves /healthz (liveness
 * that sees "jobs waiting, none taken"), /readyz and /metrics, and closes it first on shutdown.
 */
export async function serveWorker(
  rt: Runtime<{ CAPFLOW_LIVENESS_STALE_SECONDS: number } & Runtime["env"]>,
  name: QueueName,
  worker: Worker,
): Promise<string> {
  return serveWorkers(rt, [{ name, worker }]);
}

/** serveWorker for a process that consumes several queues (one worker each); live while all are. */
export async function serveWorkers(
  rt: Runtime<{ CAPFLOW_LIVENESS_STALE_SECONDS: number } & Runtime["env"]>,
  workers: Array<{ name: QueueName; worker: Worker }>,
): Promise<string> {
  const checks = workers.map(({ name, worker }) => {
    worker.on("error", (err) => rt.log.error({ err, queue: name }, "worker error"));
    worker.on("failed", (job, err) =>
      rt.log.warn({ queue: name, jobId: job?.id, err: err.message }, "job failed"),
    );
    instrumentWorker(worker, name);
    const queue = createQueue(name, { connection: rt.redis, prefix: rt.prefix });
    registerQueueDepthMetrics([queue]);
    const concurrency = watchConcurrency(worker, rt.redis, rt.prefix, name);
    // Closers run in reverse: stop taking jobs (and let running ones finish) before anything else.
    rt.shutdown.add(`${name} queue`, () => queue.close());
    rt.shutdown.add(`${name} concurrency watch`, async () => concurrency.stop());
    rt.shutdown.add(`${name} worker`, () => worker.close());
    return workerLiveness(worker, queue, rt.env.CAPFLOW_LIVENESS_STALE_SECONDS * 1000);
  });
  return rt.serveOps(async () => {
    await Promise.all(checks.map((c) => c.check()));
  });
}
