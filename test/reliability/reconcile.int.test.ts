import { afterAll, describe, expect, it } from "vitest";
import { createQueue, createRedis, createWorker, keys, putJson } from "@capflow/common";
import { reconcileDataset } from "@capflow/ingest";
import { freshPrefix, localStore, redisUrl } from "../support/services.ts";

// The reconciler's decisions, one shard in each state, against real Redis and a real store.
describe("reconcileDataset", () => {
  const prefix = freshPrefix();
  const conn = createRedis(redisUrl(), "producer");
  const queue = createQueue("features", { connection: conn, prefix });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
  });

  it("re-enqueues exactly the shards with neither output nor a live job, removing failed jobs first", async () => {
    const store = await localStore();
    const dataset = "rec";
    const enc = "enc-1";
    const id = (s: string) => `features.${dataset}.${s}`;
    const data = (s: string) => ({ dataset, shardId: s, shardKey: keys.shardList(dataset, s) });
    await putJson(store, "encoders/current.json", { id: enc });
    await putJson(store, keys.datasetInfo(dataset), { name: dataset, shards: ["sa", "sb", "sc", "sd"] });
    for (const s of ["sa", "sb", "sc", "sd", "sold"])
      await putJson(store, keys.shardList(dataset, s), { dataset, shardId: s, images: [] });
    await putJson(store, keys.featureIndex(enc, dataset, "sa"), { ids: [], failures: [] }); // done
    // sc: a job that failed for good.
    await queue.add("shard", data("sc"), { jobId: id("sc"), attempts: 1 });
    const workerConn = createRedis(redisUrl(), "worker");
    const worker = createWorker(
      "features",
      async () => {
        throw new Error("boom");
      },
      { connection: workerConn, prefix },
    );
    while ((await queue.getJob(id("sc")).then((j) => j?.getState())) !== "failed")
      await new Promise((r) => setTimeout(r, 50));
    await worker.close();
    workerConn.disconnect();
    // sb: live (delayed); sd: no job at all.
    await queue.add("shard", data("sb"), { jobId: id("sb"), delay: 3_600_000 });

    const dry = await reconcileDataset(store, queue, { dataset, dryRun: true });
    expect(dry).toMatchObject({
      shards: 4,
      done: 1,
      queued: 1,
      reenqueued: 2,
      reenqueuedShards: ["sc", "sd"],
    });
    expect(await queue.getJob(id("sd"))).toBeUndefined();
    expect(await (await queue.getJob(id("sc")))!.getState()).toBe("failed");

    const real = await reconcileDataset(store, queue, { dataset });
    expect(real).toMatchObject({
      encoderId: enc,
      shards: 4,
      done: 1,
      queued: 1,
      reenqueued: 2,
      missingLists: [],
      orphanLists: ["sold"],
    });
    expect(await (await queue.getJob(id("sc")))!.getState()).toBe("waiting");
    expect(await (await queue.getJob(id("sd")))!.getState()).toBe("waiting");
    expect(await queue.getJob(id("sold"))).toBeUndefined();
    // Idempotent: now everything is done or live.
    expect(await reconcileDataset(store, queue, { dataset })).toMatchObject({ queued: 3, reenqueued: 0 });
  });

  it("falls back to the shard lists in the store when ingest never wrote dataset.json", async () => {
    const store = await localStore();
    await putJson(store, keys.shardList("half", "s1"), { dataset: "half", shardId: "s1", images: [] });
    const out = await reconcileDataset(store, queue, { dataset: "half", encoderId: "enc-1", dryRun: true });
    expect(out).toMatchObject({ shards: 1, done: 0, reenqueued: 1 });
    await expect(reconcileDataset(store, queue, { dataset: "none", encoderId: "enc-1" })).rejects.toThrow(
      /no dataset.json/,
    );
  });
});
