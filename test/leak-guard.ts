import { afterAll } from "vitest";
import { closeLeaks, leakMessage } from "./support/leaks.ts";

// graphile/worker's leaked-worker guard, per test file: a file that leaves a BullMQ worker, a
// QueueEvents or a Redis connection (made through @capflow/common's factories) open fails, naming each,
// and they are closed so they cannot steal the next file's jobs or events. Per file, not per test,
// because a file may share one worker or connection between its tests (beforeAll/afterAll).
afterAll(async () => {
  const leaked = await closeLeaks();
  if (leaked.length > 0) throw new Error(leakMessage(leaked));
});
