import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { metrics } from "../ops/metrics.ts";
import { concurrencyKey, parseConcurrency } from "./queue-admin.ts";

const concurrencyGauge = () =>
  metrics.gauge("capflow_worker_concurrency", "Concurrency this worker currently runs with", ["queue"]);

export interface ConcurrencyWatch {
  /** Reads the key once and applies it (the timer calls this). */
  poll(): Promise<void>;
  stop(): void;
}

/**
 * Applies the operator's concurrency override (`capflow queue concurrency <queue> <n>`, a Redis key
 * `capflow:<prefix>:concurrency:<queue>`) to a running worker. Polling, not pub/sub: a worker that
 * was disconnected when the change was made still converges on its next read, and a missing key
 * means "back to the configured default". BullMQ applies a lower concurrency as active jobs finish;
 * running jobs are never interrupted.
 */
export function watchConcurrency(
  worker: Worker,
  redis: Redis,
  prefix: string,
  queueName: string,
  opts: {
    intervalMs?: number;
    onChange?: (from: number, to: number) => void;
    onError?: (err: Error) => void;
  } = {},
): ConcurrencyWatch {
  const configured = worker.concurrency;
  const key = concurrencyKey(prefix, queueName);
  concurrencyGauge().set({ queue: queueName }, configured);
  const poll = async () => {
    const wanted = parseConcurrency(await redis.get(key)) ?? configured;
    if (wanted !== worker.concurrency) {
      const from = worker.concurrency;
      worker.concurrency = wanted;
      opts.onChange?.(from, wanted);
    }
    concurrencyGauge().set({ queue: queueName }, worker.concurrency);
  };
  const timer = setInterval(() => {
    poll().catch((err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err))));
  }, opts.intervalMs ?? 5_000);
  timer.unref();
  return {
    poll,
    stop: () => clearInterval(timer),
  };
}
