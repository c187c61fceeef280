import { expect } from "vitest";
import { getJson, keys, readShardIndex, type ShardList } from "@capflow/common";
import { drawImage } from "../images.ts";
import type { PipelineFixture } from "./fixture.ts";
import { sleep, type CapflowProcess } from "./process-control.ts";

/**
 * docs/reliability.md test 7, shared by its CI and chaos versions: 24 drawn images in shards of 8, the 4th
 * image of the second shard is the poison (the test-only preload aborts the worker process when it
 * reads it: CAPFLOW_TEST_CRASH_ON).
 */
export async function ingestWithPoison(f: PipelineFixture) {
  await f.writeDataset(24);
  await f.ingest(8);
  const info = await getJson<{ shards: string[] }>(f.store, keys.datasetInfo(f.dataset));
  const poisonShard = info.shards[1]!;
  const list = await getJson<ShardList>(f.store, keys.shardList(f.dataset, poisonShard));
  return {
    shards: info.shards.length,
    poisonShard,
    list,
    poison: list.images[3]!.id,
    jobId: `features.${f.dataset}.${poisonShard}`,
  };
}
export type PoisonSetup = Awaited<ReturnType<typeof ingestWithPoison>>;

/**
 * Restarts the worker whenever it dies (as Kubernetes would), until every shard but the poison's is
 * done and the poison shard's job has settled (completed or failed). Returns that job's state.
 */
export async function superviseUntilSettled(
  f: PipelineFixture,
  worker: CapflowProcess,
  p: PoisonSetup,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let state = "";
  while (Date.now() < deadline) {
    if (!worker.running) {
      await sleep(500);
      worker.start();
    }
    state = (await (await f.queue.getJob(p.jobId))?.getState()) ?? "missing";
    const done = await f.doneShards();
    if ((state === "completed" && done === p.shards) || (state === "failed" && done === p.shards - 1)) break;
    await sleep(500);
  }
  return state;
}

/**
 * The outcome: one death with the poison in a batch, two with it alone (maxStalledCount 3 would have
 * failed the shard at a 4th); the 4th start quarantines it without reading it and completes the shard.
 * Everything else has its vector, nothing was written twice.
 */
export async function expectPoisonIsolated(
  f: PipelineFixture,
  worker: CapflowProcess,
  p: PoisonSetup,
  state: string,
  log: Record<string, unknown>,
): Promise<void> {
  const job = await f.queue.getJob(p.jobId);
  const crashes = worker.exits.filter((e) => e.signal === "SIGABRT").length;
  const ledger = await f.ledger();
  const index = await readShardIndex(f.store, await f.encoderId(), f.dataset, p.poisonShard);
  console.info(
    JSON.stringify({
      poisonState: state,
      crashes,
      starts: worker.starts,
      stalledCounter: job?.stalledCounter,
      vectors: ledger.vectors,
      quarantined: ledger.reasons,
      poisonShardVectors: index.ids.length,
      ...log,
    }),
  );
  expect(state, worker.tail()).toBe("completed");
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
  expect(index.ids).toEqual(p.list.images.map((i) => i.id).filter((id) => id !== p.poison));
  expect(index.failures).toEqual([
    {
      id: p.poison,
      reason: "crashed_worker",
      message: expect.stringMatching(/died 2 times in a row .* 3 deaths of this shard's job/) as string,
    },
  ]);
  expect(await f.duplicateWrites()).toEqual([]);
}

/** No crash loop: the same process, not restarted, serves a dataset ingested afterwards. */
export async function expectServesOn(
  f: PipelineFixture,
  worker: CapflowProcess,
  timeoutMs: number,
): Promise<void> {
  const starts = worker.starts;
  // Images the first dataset does not have (the same seeds would give the poison's id again).
  await f.writeDataset(0, { "late0.png": await drawImage(100), "late1.jpg": await drawImage(101, "jpeg") });
  await f.ingest(4, "after");
  await f.waitAllDone(timeoutMs, "after");
  expect(worker.running).toBe(true);
  expect(worker.starts).toBe(starts);
}
