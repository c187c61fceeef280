import { afterEach, describe, expect, it } from "vitest";
import { encodeNpy, getJson, keys, type ShardList } from "@capflow/common";
import { loadEncoder } from "@capflow/ml";
import { extractShard } from "@capflow/feature-worker";
import { PipelineFixture } from "../support/fault/fixture.ts";
import { CapflowProcess } from "../support/fault/process-control.ts";

// docs/reliability.md tests 2, 4, 5 and 6 with real child-process feature workers, a private real Redis
// and the real ONNX encoder. Each test owns its Redis, so killing or restarting it disturbs no other.
describe("feature workers under process and Redis faults", () => {
  let f: PipelineFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it("redoes a shard whose worker was killed mid-batch: one committed output, identical bytes", async () => {
    f = await PipelineFixture.create();
    await f.writeDataset(16);
    const first = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" });
    await first.waitReady();
    const ingest = await f.ingest(8);
    expect(ingest.shardsEnqueued).toBe(2);
    const killedJob = await f.waitActive(120_000, 25);
    await first.kill();
    expect(first.exits.at(-1)?.signal).toBe("SIGKILL");
    const second = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" });
    await second.waitReady();
    // The killed job's lock (60 s) must expire and a stalled-check (30 s) see it: up to 90 s.
    await f.waitAllDone(240_000);

    const ledger = await f.ledger();
    expect(ledger).toMatchObject({ ingested: 16, vectors: 16, missing: [], overlap: [], twice: [] });
    expect(ledger.badVectors).toEqual([]);
    const encoderId = await f.encoderId();
    const counts = await f.writeCounts();
    const shards = (await f.ledger()).shards;
    expect(shards).toBe(2);
    // The commit marker (index) is written once per shard; the killed worker never got that far.
    for (const [k, n] of counts)
      if (k.startsWith(`features/${encoderId}/`) && k.endsWith(".json")) expect(n).toBe(1);

    // Identical bytes: the redone shard equals a clean in-process run of the same shard.
    const shardId = killedJob.split(".").pop()!;
    const list = await getJson<ShardList>(f.store, keys.shardList(f.dataset, shardId));
    const encoder = await loadEncoder({ runtime: "onnx", threads: 1 });
    try {
      const out = await extractShard(f.store, encoder, list, { batchSize: 2, maxPixels: 50_000_000 });
      const expected = encodeNpy(out.vectors, out.ids.length, encoder.dim, "float32");
      const stored = await f.store.get(keys.featureMatrix(encoderId, f.dataset, shardId));
      expect(Buffer.compare(stored, Buffer.from(expected))).toBe(0);
    } finally {
      await encoder.dispose();
    }
  });

  it("restores every shard after Redis restarts empty, with `capflow reconcile`", async () => {
    f = await PipelineFixture.create();
    await f.writeDataset(24);
    const worker = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" });
    await worker.waitReady();
    const ingest = await f.ingest(4);
    expect(ingest.shardsEnqueued).toBe(6);
    while ((await f.doneShards()) < 2) await new Promise((r) => setTimeout(r, 200));
    // No persistence: every queued job is gone, the worker's connections drop and must come back.
    await f.redis.restart();
    expect(await f.queue.count()).toBe(0);

    const cli = new CapflowProcess(["reconcile", f.dataset], f.env({ CAPFLOW_LOG_LEVEL: "warn" })).start();
    await cli.wait();
    expect(cli.exits.at(-1)?.code, cli.tail()).toBe(0);
    const summary = JSON.parse(
      cli.output
        .trim()
        .split("\n")
        .find((l) => l.startsWith('{"dataset"'))!,
    );
    expect(summary.shards).toBe(6);
    expect(summary.done + summary.queued + summary.reenqueued).toBe(6);
    expect(summary.queued).toBe(0);
    expect(summary.reenqueued).toBeGreaterThanOrEqual(1);

    // The same worker process, never restarted, takes the re-enqueued jobs.
    await f.waitAllDone(240_000);
    const ledger = await f.ledger();
    expect(ledger).toMatchObject({ ingested: 24, vectors: 24, missing: [], overlap: [], twice: [] });
    // A second reconcile finds nothing to do.
    const again = await f.reconcile();
    expect(again).toMatchObject({ shards: 6, done: 6, queued: 0, reenqueued: 0 });
    // At most the shard in flight at the restart is written twice (same bytes): everything else once.
    expect((await f.duplicateWrites()).length).toBeLessThanOrEqual(2);
    expect(worker.starts).toBe(1);
  });

  it("ingests the same dataset three times (once after retention removed the jobs): one output each, no work redone", async () => {
    f = await PipelineFixture.create();
    await f.writeDataset(12);
    const worker = f.startWorker();
    await worker.waitReady();
    expect(await f.ingest(4)).toMatchObject({ shards: 3, shardsEnqueued: 3 });
    await f.waitAllDone(180_000);
    expect(await f.ingest(4)).toMatchObject({ shards: 3, shardsEnqueued: 0, shardsAlreadyDone: 3 });
    // Retention: completed jobs removed, their ids no longer deduplicate.
    await f.queue.clean(0, 10_000, "completed");
    expect(await f.queue.getCompletedCount()).toBe(0);
    expect(await f.ingest(4)).toMatchObject({ shards: 3, shardsEnqueued: 0, shardsAlreadyDone: 3 });
    // And a producer that enqueues without looking (same ids, jobs gone): the worker skips them.
    const info = await getJson<{ shards: string[] }>(f.store, keys.datasetInfo(f.dataset));
    const jobs = await Promise.all(
      info.shards.map((shardId) =>
        f!.queue.add(
          "shard",
          { dataset: f!.dataset, shardId, shardKey: keys.shardList(f!.dataset, shardId) },
          { jobId: `features.${f!.dataset}.${shardId}` },
        ),
      ),
    );
    for (const job of jobs) {
      for (;;) {
        const state = await job.getState();
        if (state === "completed" || state === "unknown") break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(await f.duplicateWrites()).toEqual([]);
    const ledger = await f.ledger();
    expect(ledger).toMatchObject({ ingested: 12, vectors: 12, missing: [], twice: [] });
    expect(worker.output).toMatch(/"skipped":true/);
  });

  it("finishes or hands back its active job on SIGTERM: exit 0, no stalled events", async () => {
    f = await PipelineFixture.create();
    await f.writeDataset(16);
    const stalled = await f.watchStalled();
    const first = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" });
    await first.waitReady();
    await f.ingest(8);
    await f.waitActive(120_000, 25);
    expect(await first.terminate()).toBe(0);
    const second = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" });
    await f.waitAllDone(180_000);
    expect(await second.terminate()).toBe(0);
    expect(stalled.stalled).toEqual([]);
    expect(await f.duplicateWrites()).toEqual([]);
    expect(await f.ledger()).toMatchObject({ ingested: 16, vectors: 16, missing: [], twice: [] });
  });
});
