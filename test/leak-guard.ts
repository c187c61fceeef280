import { afterAll, expect } from "vitest";
import { openQueueEvents, openWorkers } from "@capflow/common";

// graphile/worker's leaked-worker guard, per test file: a file that leaves a BullMQ worker or a
// QueueEvents (a blocking Redis connection each) open fails, and they are closed so they cannot steal
// the next file's jobs or events. Per file, not per test, because a file may share one worker between
// its tests (created in beforeAll, closed in afterAll).
afterAll(async () => {
  const workers = [...openWorkers];
  const events = [...openQueueEvents];
  await Promise.all([...workers.map((w) => w.close(true)), ...events.map((e) => e.close())]);
  expect(
    [...workers.map((w) => `worker ${w.name}`), ...events.map((e) => `queue events ${e.name}`)],
    "test left BullMQ workers or QueueEvents open",
  ).toEqual([]);
});
