import { describe, expect, it } from "vitest";
import { keys, getJson, type ShardList } from "@capflow/common";
import { PipelineFixture } from "../support/fault/fixture.ts";
import { sleep } from "../support/fault/process-control.ts";

// RELIABILITY.md test 7. No input is known to crash sharp/libvips natively (10k fuzz cases found
// none), so the crash is injected: the test-only preload (test/support/fault/preload.js) aborts the
// worker process when it reads the poison image from the store (CAPFLOW_TEST_CRASH_ON). A supervisor
// restarts the worker after each crash, as Kubernetes would.
describe("a poison pill", () => {
  it("fails alone after bounded retries; the other shards complete; no crash loop", async () => {
    const f = await PipelineFixture.create();
    try {
      await f.writeDataset(24);
      await f.ingest(8);
      const info = await getJson<{ shards: string[] }>(f.store, keys.datasetInfo(f.dataset));
      const poisonShard = info.shards[1]!;
      const list = await getJson<ShardList>(f.store, keys.shardList(f.dataset, poisonShard));
      const poison = list.images[3]!.id;
      const worker = f.startWorker({ CAPFLOW_TEST_CRASH_ON: poison });
      const jobId = `features.${f.dataset}.${poisonShard}`;
      let state = "";
      for (let t = 0; t < 600; t++) {
        if (!worker.running) {
          await sleep(500);
          worker.start();
        }
        state = (await (await f.queue.getJob(jobId))?.getState()) ?? "missing";
        if (state === "failed" && (await f.doneShards()) === info.shards.length - 1) break;
        await sleep(1000);
      }
      const job = await f.queue.getJob(jobId);
      console.info(
        JSON.stringify({
          poisonState: state,
          failedReason: job?.failedReason,
          crashes: worker.exits.length,
          starts: worker.starts,
        }),
      );
      expect(state).toBe("failed");
      expect(job?.failedReason).toMatch(/stalled/);
      // maxStalledCount 1: the first crash puts it back, the second fails it. No loop beyond that.
      expect(worker.exits.filter((e) => e.signal === "SIGABRT").length).toBeLessThanOrEqual(2);
      expect(await f.doneShards()).toBe(info.shards.length - 1);
      // The worker keeps serving after the poison is out of the way.
      await sleep(5000);
      expect(worker.running).toBe(true);
    } finally {
      await f.close();
    }
  });
});
