import { afterEach, describe, expect, it } from "vitest";
import { getJson, keys, readShardIndex, type ShardList } from "@capflow/common";
import { drawImage } from "../support/images.ts";
import { PipelineFixture } from "../support/fault/fixture.ts";
import { sleep, type CapflowProcess } from "../support/fault/process-control.ts";

// RELIABILITY.md test 7, CI size: the chaos version (test/chaos/poison-pill.chaos.test.ts) runs with
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
    await f.writeDataset(24);
    await f.ingest(8);
    const info = await getJson<{ shards: string[] }>(f.store, keys.datasetInfo(f.dataset));
    const poisonShard = info.shards[1]!;
    const list = await getJson<ShardList>(f.store, keys.shardList(f.dataset, poisonShard));
    const poison = list.images[3]!.id;
    const worker = f.startWorker({
      CAPFLOW_TEST_CRASH_ON: poison,
      CAPFLOW_FEATURE_BATCH: "2",
      CAPFLOW_FEATURE_LOCK_SECONDS: "5",
      CAPFLOW_FEATURE_STALLED_INTERVAL_SECONDS: "2",
    });
    const jobId = `features.${f.dataset}.${poisonShard}`;
    const state = await superviseUntilSettled(f, worker, jobId, info.shards.length, 150_000);
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
        vectors: ledger.vectors,
        quarantined: ledger.reasons,
        poisonShardVectors: index.ids.length,
        seconds: Math.round((Date.now() - started) / 1000),
      }),
    );
    expect(state, worker.tail()).toBe("completed");
    // One batch death, then two deaths with the poison alone; the 4th start finishes the shard.
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

    // No crash loop: the same process serves a dataset ingested afterwards.
    const starts = worker.starts;
    // Images the first dataset does not have (the same seeds would give the poison's id again).
    await f.writeDataset(0, { "late0.png": await drawImage(100), "late1.jpg": await drawImage(101, "jpeg") });
    await f.ingest(4, "after");
    await f.waitAllDone(60_000, "after");
    expect(worker.running).toBe(true);
    expect(worker.starts).toBe(starts);
  });
});

/**
 * Restarts the worker whenever it dies, until every shard but the poison's is done and the poison
 * shard's job has settled (completed or failed). Returns that job's state.
 */
async function superviseUntilSettled(
  f: PipelineFixture,
  worker: CapflowProcess,
  jobId: string,
  shards: number,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let state = "";
  while (Date.now() < deadline) {
    if (!worker.running) {
      await sleep(500);
      worker.start();
    }
    state = (await (await f.queue.getJob(jobId))?.getState()) ?? "missing";
    const done = await f.doneShards();
    if ((state === "completed" && done === shards) || (state === "failed" && done === shards - 1)) break;
    await sleep(500);
  }
  return state;
}
