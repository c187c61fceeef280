import type { Queue, Worker } from "bullmq";

/**
 * Liveness that sees the real failure mode: a worker connected to Redis but no longer taking jobs
 * (bullmq 6.0–6.3.2 after a long outage, issue #4585; a wedged event loop). Unhealthy when jobs are
 * waiting and this worker has completed or failed none for `staleMs`.
 */
export function workerLiveness(worker: Worker, queue: Queue, staleMs: number) {
  let lastProgress = Date.now();
  const touch = () => {
    lastProgress = Date.now();
  };
  worker.on("completed", touch);
  worker.on("failed", touch);
  worker.on("active", touch);
  return {
    touch,
    async check(): Promise<void> {
      const waiting = await queue.getWaitingCount();
      const idleFor = Date.now() - lastProgress;
      if (waiting === 0) {
        touch();
        return;
      }
      if (worker.isPaused()) return;
      if (idleFor > staleMs) {
        throw new Error(`${waiting} jobs waiting and none taken for ${Math.round(idleFor / 1000)} s`);
      }
    },
  };
}
