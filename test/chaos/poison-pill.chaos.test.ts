import { describe, expect, it } from "vitest";
import { keys, getJson, readShardIndex, type ShardList } from "@capflow/common";
import { drawImage } from "../support/images.ts";
import { PipelineFixture } from "../support/fault/fixture.ts";
import { sleep } from "../support/fault/process-control.ts";

// RELIABILITY.md test 7 with production settings: a 60 s lock and a 30 s stalled check, so each
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
      await f.writeDataset(24);
      await f.ingest(8);
      const info = await getJson<{ shards: string[] }>(f.store, keys.datasetInfo(f.dataset));
      const poisonShard = info.shards[1]!;
      const list = await getJson<ShardList>(f.store, keys.shardList(f.dataset, poisonShard));
      const poison = list.images[3]!.id;
      const stalled = await f.watchStalled();
      const worker = f.startWorker({ CAPFLOW_TEST_CRASH_ON: poison, CAPFLOW_FEATURE_CONCURRENCY: "2" });
      const jobId = `features.${f.dataset}.${poisonShard}`;
      let state = "";
      for (let t = 0; t < 1400; t++) {
        if (!worker.running) {
          await sleep(500);
          worker.start();
        }
        state = (await (await f.queue.getJob(jobId))?.getState()) ?? "missing";
        const done = await f.doneShards();
        if ((state === "completed" && done === info.shards.length) || state === "failed") break;
        await sleep(500);
      }
      const job = await f.queue.getJob(jobId);
      const crashes = worker.exits.filter((e) => e.signal === "SIGABRT").length;
      const ledger = await f.ledger();
      const index = await readShardIndex(f.store, await f.encoderId(), f.dataset, poisonShard);
      console.info(
        JSON.stringify({
          poisonState: state,
          crashes,
          starts: worker.starts,
          stalledCounter: job?.stalledCounter,
          stalledEvents: stalled.stalled.length,
          vectors: ledger.vectors,
          quarantined: ledger.reasons,
          poisonShardVectors: index.ids.length,
          seconds: Math.round((Date.now() - started) / 1000),
        }),
      );
      expect(state, worker.tail()).toBe("completed");
      // Bounded: one death with the poison in a batch, two with it alone (maxStalledCount 3 would
      // have failed the shard at a 4th). The 4th start quarantines it without reading it.
      expect(crashes).toBe(3);
      expect(worker.exits.length).toBe(3);
      expect(job?.stalledCounter).toBe(3);
      expect(ledger).toMatchObject({
        ingested: 24,
        vectors: 23,
        quarantined: 1,
        missing: [],
        overlap: [],
        twice: [],
        unknown: [],
        badVectors: [],
        reasons: { crashed_worker: 1 },
      });
      expect(index.ids).toEqual(list.images.map((i) => i.id).filter((id) => id !== poison));
      expect(index.failures).toEqual([
        {
          id: poison,
          reason: "crashed_worker",
          message: expect.stringMatching(/died 2 times in a row .* 3 deaths of this shard's job/) as string,
        },
      ]);
      expect(await f.duplicateWrites()).toEqual([]);

      // No crash loop: the same process serves a dataset ingested afterwards (images the first
      // dataset does not have: the same seeds would give the poison's id again).
      const starts = worker.starts;
      await f.writeDataset(0, {
        "late0.png": await drawImage(100),
        "late1.jpg": await drawImage(101, "jpeg"),
      });
      await f.ingest(4, "after");
      await f.waitAllDone(120_000, "after");
      await sleep(5000);
      expect(worker.running).toBe(true);
      expect(worker.starts).toBe(starts);
    } finally {
      await f.close();
    }
  });
});
