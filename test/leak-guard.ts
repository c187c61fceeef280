import { afterAll, expect } from "vitest";
import { openWorkers } from "@capflow/common";

// graphile/worker's leaked-worker guard, per test file: a file that leaves a BullMQ worker running
// fails, and the worker is closed so it cannot steal the next file's jobs. Per file, not per test,
// because a file may share one worker between its tests (created in beforeAll, closed in afterAll).
afterAll(async () => {
  const leaked = [...openWorkers];
  await Promise.all(leaked.map((w) => w.close(true)));
  expect(
    leaked.map((w) => w.name),
    "test left BullMQ workers open",
  ).toEqual([]);
});
