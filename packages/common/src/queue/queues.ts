import { Queue, QueueEvents, UnrecoverableError, Worker, type Job, type WorkerOptions } from "bullmq";
import os from "node:os";
import { duplicateForBlocking, type RedisClient } from "./redis.ts";
import { JobCatalog, type JobData, type JobInput, type QueueName } from "./jobs.ts";

export interface QueueContext {
  /** A producer connection (fails fast) shared by queues. */
  connection: RedisClient;
  prefix: string;
}

export type TypedQueue<Q extends QueueName> = Queue<JobInput<Q>, unknown, string>;

export function createQueue<Q extends QueueName>(name: Q, ctx: QueueContext): TypedQueue<Q> {
  return new Queue(name, {
    connection: ctx.connection,
    prefix: ctx.prefix,
    defaultJobOptions: JobCatalog[name].options,
    // The events stream is capped so Redis memory stays flat over millions of jobs
    // (docs/operations.md, retention).
    streams: { events: { maxLen: 2_000 } },
  }) as TypedQueue<Q>;
}

/**
 * QueueEvents reads a stream with a blocking command: it needs a worker-style connection of its own.
 * BullMQ never closes a connection it was handed, so `close()` here also ends that duplicate (a
 * leaked one keeps the process alive, retrying a Redis that is gone).
 */
export function createQueueEvents(
  name: QueueName,
  ctx: { connection: RedisClient; prefix: string },
): QueueEvents {
  const connection = duplicateForBlocking(ctx.connection);
  connection.on("error", () => {});
  const events = new QueueEvents(name, { connection, prefix: ctx.prefix });
  openQueueEvents.add(events);
  const close = events.close.bind(events);
  events.close = async () => {
    openQueueEvents.delete(events);
    await close();
    connection.disconnect();
  };
  return events;
}

/** QueueEvents not yet closed, each holding a blocking connection; the test suite's leak guard checks it. */
export const openQueueEvents = new Set<QueueEvents>();

export type Processor<Q extends QueueName> = (
  data: JobData<Q>,
  job: Job,
  signal: AbortSignal,
) => Promise<unknown>;

/** Validates a job's payload against the catalog; a malformed one can never succeed, so no retries. */
export function parseJobData<Q extends QueueName>(name: Q, raw: unknown): JobData<Q> {
  const parsed = JobCatalog[name].schema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`)
      .join("; ");
    throw new UnrecoverableError(`malformed ${name} job: ${detail}`);
  }
  return parsed.data as JobData<Q>;
}

export function createWorker<Q extends QueueName>(
  name: Q,
  processor: Processor<Q>,
  opts: { connection: RedisClient; prefix: string } & Omit<WorkerOptions, "connection" | "prefix">,
): Worker {
  const { connection, ...rest } = opts;
  const entry = JobCatalog[name];
  const defaults: Partial<WorkerOptions> = "worker" in entry ? entry.worker : {};
  const worker = new Worker(
    name,
    async (job, _token, signal) =>
      processor(parseJobData(name, job.data), job, signal ?? new AbortController().signal),
    // The name lands on every job it takes (`job.processedBy`): which process holds a job, for
    // operators (bull-board) and for the chaos tests, which record whether a kill hit a job in flight.
    { name: workerName(), ...defaults, ...rest, connection },
  );
  openWorkers.add(worker);
  worker.once("closed", () => openWorkers.delete(worker));
  return worker;
}

/** `<host>:<pid>`, the name every worker of this process gives BullMQ. */
export const workerName = () => `${os.hostname()}:${process.pid}`;

/** Workers not yet closed; the test suite's leak guard fails a test that leaves one open. */
export const openWorkers = new Set<Worker>();

/** A job that can never succeed (a malformed payload, input that changed under it): no retries. */
export { UnrecoverableError };
