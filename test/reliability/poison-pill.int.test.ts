import { afterEach, describe, it } from "vitest";
import { PipelineFixture } from "../support/fault/fixture.ts";
import {
  expectPoisonIsolated,
  expectServesOn,
  ingestWithPoison,
  superviseUntilSettled,
} from "../support/fault/poison-pill.ts";

// docs/reliability.md test 7, CI size: the chaos version (test/chaos/poison-pill.chaos.test.ts) runs with
// the production lock (60 s) and stalled interval (30 s), 90 s per crash; here both are shortened
// (CAPFLOW_FEATURE_LOCK_SECONDS 5, _STALLED_INTERVAL_SECONDS 2) so that 3 crashes fit in ~1 minute.
// The crash is injected: the test-only preload (test/support/fault/preload.js) aborts the worker
// process when it reads the poison image (CAPFLOW_TEST_CRASH_ON). A supervisor restarts it, as
// Kubernetes would.
describe("a poison pill (CI size)", () => {
  let f: PipelineFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it("quarantines only the image that crashes the worker; its shard and the others complete", async () => {
    const started = Date.now();
    f = await PipelineFixture.create();
    const p = await ingestWithPoison(f);
    const worker = f.startWorker({
      CAPFLOW_TEST_CRASH_ON: p.poison,
      CAPFLOW_FEATURE_BATCH: "2",
      CAPFLOW_FEATURE_LOCK_SECONDS: "5",
      CAPFLOW_FEATURE_STALLED_INTERVAL_SECONDS: "2",
    });
    const state = await superviseUntilSettled(f, worker, p, 150_000);
    await expectPoisonIsolated(f, worker, p, state, { seconds: Math.round((Date.now() - started) / 1000) });
    await expectServesOn(f, worker, 60_000);
  });
});
