import { afterEach, expect } from "vitest";
import { openWorkers } from "@capflow/common";

// graphile/worker's leaked-worker guard: a test that leaves a BullMQ worker running fails, and the
// worker is closed so it cannot steal the next test's jobs.
afterEach(async () => {
  const leaked = [...openWorkers];
  await Promise.all(leaked.map((w) => w.close(true)));
  expect(leaked.map((w) => w.name), "test left BullMQ workers open").toEqual([]);
});
