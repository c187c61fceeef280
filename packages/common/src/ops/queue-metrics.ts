import type { Job, Queue, Worker } from "bullmq";
import { metrics } from "./metrics.ts";

/** The BullMQ states exported as `capflow_queue_jobs{state}`; a fixed set, so the label is bounded. */
export const QUEUE_STATES = [
  "waiting",
  "prioritized",
  "active",
  "delayed",
  "completed",
  "failed",
  "waiting-children",
] as const;

const watched = new Set<Queue>();

const queueJobsGauge = () =>
  metrics.gauge(
    "capflow_queue_jobs",
    "Jobs in each BullMQ state, read with getJobCounts() at scrape time",
    ["queue", "state"],
    async function collect() {
      await Promise.all(
        [...watched].map(async (queue) => {
          if (queue.closing) {
            watched.delete(queue);
            for (const state of QUEUE_STATES) this.remove({ queue: queue.name, state });
            return;
          }
          try {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
            queueScrapeErrors().inc({ queue: queue.name }, 0);
          } catch {
            // A Redis blip must not fail the whole scrape (the process metrics still matter then):
            // drop this queue's series so a stale depth is never reported, and count the miss.
            for (const state of QUEUE_STATES) this.remove({ queue: queue.name, state });
            queueScrapeErrors().inc({ queue: queue.name });
          }
        }),
      );
    },
  );

// Metric families are created on first use, not at import: a process that never calls these
// functions exposes none of them (the catalogue test compares what each role really serves).
const queueScrapeErrors = () =>
  metrics.counter(
    "capflow_queue_scrape_errors_total",
    "Scrapes where a queue's job counts could not be read from Redis",
    ["queue"],
  );

/**
 * Exports `capflow_queue_jobs{queue,state}` for these queues, read from Redis on every scrape (no
 * timer, no stale values). Call it once per process with the queues it produces to or works on;
 * calling again adds queues. A closed queue is dropped at the next scrape.
 */
export function registerQueueDepthMetrics(queues: Queue[]): void {
  queueJobsGauge();
  for (const q of queues) {
    watched.add(q);
    queueScrapeErrors().inc({ queue: q.name }, 0);
  }
}

/** Why a job failed, as a bounded label value (never the error message). */
export const JOB_FAILURE_REASONS = [
  "malformed",
  "unrecoverable",
  "stalled",
  "aborted",
  "timeout",
  "error",
] as const;
export type JobFailureReason = (typeof JOB_FAILURE_REASONS)[number];

export function failureReason(err: Error): JobFailureReason {
  if (err.name === "UnrecoverableError")
    return err.message.startsWith("malformed") ? "malformed" : "unrecoverable";
  if (/stalled more than/i.test(err.message)) return "stalled";
  if (err.name === "AbortError") return "aborted";
  if (err.name === "TimeoutError" || /timed? ?out/i.test(err.message)) return "timeout";
  return "error";
}

const jobsTotal = () =>
  metrics.counter("capflow_jobs_total", "Jobs finished by this worker, by outcome", ["queue", "status"]);
const jobFailures = () =>
  metrics.counter("capflow_job_failures_total", "Failed job attempts, by bounded reason", [
    "queue",
    "reason",
  ]);
const jobsStalled = () =>
  metrics.counter(
    "capflow_jobs_stalled_total",
    "Jobs this worker found stalled (lock lost) and moved back to wait or failed",
    ["queue"],
  );
const jobDuration = () =>
  metrics.histogram(
    "capflow_job_duration_seconds",
    "Processing time of a job attempt (processedOn to finishedOn)",
    ["queue", "status"],
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  );
const jobWait = () =>
  metrics.histogram(
    "capflow_job_wait_seconds",
    "Time from enqueue to the start of processing",
    ["queue"],
    [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
  );

const seconds = (from?: number, to?: number) =>
  from !== undefined && to !== undefined && to >= from ? (to - from) / 1000 : undefined;

function observe(job: Job | undefined, queue: string, status: "completed" | "failed") {
  const took = seconds(job?.processedOn, job?.finishedOn ?? Date.now());
  if (took !== undefined) jobDuration().observe({ queue, status }, took);
}

/**
 * Per-queue throughput, latency and failures from a worker's events: `capflow_jobs_total`,
 * `capflow_job_duration_seconds`, `capflow_job_wait_seconds`, `capflow_job_failures_total{reason}`,
 * `capflow_jobs_stalled_total`. Every label value is initialised at zero so that rate() and
 * ratio queries have data before the first job.
 */
export function instrumentWorker(worker: Worker, queue: string = worker.name): void {
  for (const status of ["completed", "failed"] as const) {
    jobsTotal().inc({ queue, status }, 0);
    jobDuration().zero({ queue, status });
  }
  for (const reason of JOB_FAILURE_REASONS) jobFailures().inc({ queue, reason }, 0);
  jobsStalled().inc({ queue }, 0);
  jobWait().zero({ queue });

  worker.on("active", (job) => {
    const waited = seconds(job.timestamp, job.processedOn ?? Date.now());
    if (waited !== undefined) jobWait().observe({ queue }, waited);
  });
  worker.on("completed", (job) => {
    jobsTotal().inc({ queue, status: "completed" });
    observe(job, queue, "completed");
  });
  worker.on("failed", (job, err) => {
    jobsTotal().inc({ queue, status: "failed" });
    jobFailures().inc({ queue, reason: failureReason(err) });
    observe(job, queue, "failed");
  });
  worker.on("stalled", () => jobsStalled().inc({ queue }));
}
