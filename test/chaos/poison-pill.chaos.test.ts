import { describe, it } from "vitest";
import { PipelineFixture } from "../support/fault/fixture.ts";
import {
  expectPoisonIsolated,
  expectServesOn,
  ingestWithPoison,
  superviseUntilSettled,
} from "../support/fault/poison-pill.ts";

// docs/reliability.md test 7 with production settings: a 60 s lock and a 30 s stalled check, so each
// crash costs ~90 s before the shard is redone (the CI version, test/reliability/poison-pill.int.test.ts,
// shortens both). No input is known to crash sharp/libvips natively (10k fuzz cases found none), so
// the crash is injected: the test-only preload (test/support/fault/preload.js) aborts the worker
// process when it reads the poison image from the store (CAPFLOW_TEST_CRASH_ON). A supervisor
// restarts the worker after each crash, as Kubernetes would. Two shards run at once
// (CAPFLOW_FEATURE_CONCURRENCY 2), so every crash also kills a healthy shard mid-batch: its images
// must be isolated too, and none quarantined.
describe("a poison pill", () => {
  it("fails alone after bounded retries: its shard and the others complete; no crash loop", async () => {
    const started = Date.now();
    const f = await PipelineFixture.create();
    try {
      const p = await ingestWithPoison(f);
      const stalled = await f.watchStalled();
      const worker = f.startWorker({ CAPFLOW_TEST_CRASH_ON: p.poison, CAPFLOW_FEATURE_CONCURRENCY: "2" });
      const state = await superviseUntilSettled(f, worker, p, 700_000);
      await expectPoisonIsolated(f, worker, p, state, {
        stalledEvents: stalled.stalled.length,
        seconds: Math.round((Date.now() - started) / 1000),
      });
      await expectServesOn(f, worker, 120_000);
    } finally {
      await f.close();
    }
  });
});
