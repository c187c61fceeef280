import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createQueue,
  createRedis,
  keys,
  readDatasetInfo,
  type BulkResultLine,
  type CaptionResult,
  type ObjectStore,
  createQueueEvents,
} from "@capflow/common";
import { publishModel } from "@capflow/ml";
import type { Captioner } from "@capflow/caption-worker";
import { freshPrefix, localStore, redisUrl } from "../../../test/support/services.ts";
import { preparePublishedModel } from "../../../test/support/pipeline.ts";
import {
  startCaptioner,
  startCaptionWorkers,
  type CaptionWorkers,
} from "../../../test/support/caption-workers.ts";
import { drawImage } from "../../../test/support/images.ts";
import { createHash } from "node:crypto";

// Real Redis, real store, the real encoder, and a model really trained (briefly) on real images.
describe("caption worker", () => {
  let store: ObjectStore;
  let captioner: Captioner;
  const prefix = freshPrefix();
  const conn = createRedis(redisUrl(), "producer");
  const workerConn = createRedis(redisUrl(), "worker");
  const bulkConn = createRedis(redisUrl(), "worker");
  const queue = createQueue("captions", { connection: conn, prefix });
  const bulkQueue = createQueue("caption-bulk", { connection: conn, prefix });
  const events = createQueueEvents("captions", { connection: workerConn, prefix });
  const bulkEvents = createQueueEvents("caption-bulk", { connection: bulkConn, prefix });
  let workers: CaptionWorkers;
  let dataset: string;
  let runId: string;

  beforeAll(async () => {
    store = await localStore();
    const prepared = await preparePublishedModel(store, { images: 24, epochs: 2 });
    dataset = prepared.dataset;
    runId = prepared.result.runId;
    captioner = await startCaptioner(store, prepared.encoder);
    workers = startCaptionWorkers({ captioner, store, prefix, concurrency: 32, bulkConcurrency: 1 });
    await events.waitUntilReady();
    await bulkEvents.waitUntilReady();
  });
  afterAll(async () => {
    await workers?.close();
    await events.close();
    await bulkEvents.close();
    for (const q of [queue, bulkQueue]) {
      await q.obliterate({ force: true });
      await q.close();
    }
    conn.disconnect();
    workerConn.disconnect();
    bulkConn.disconnect();
    captioner?.dispose();
  });

  async function storeImage(seed: number): Promise<string> {
    const bytes = await drawImage(seed);
    const key = keys.image(createHash("sha256").update(bytes).digest("hex"), "png");
    await store.put(key, bytes);
    return key;
  }

  it("captions one image with the published model", async () => {
    const imageKey = await storeImage(1001);
    const job = await queue.add("caption", { kind: "image", requestId: "r1", imageKey });
    const out = (await job.waitUntilFinished(events)) as CaptionResult;
    expect(out.modelVersion).toBe(`default@${runId}/epoch-${out.modelVersion.split("epoch-")[1]}`);
    expect(typeof out.caption).toBe("string");
    expect(Number.isFinite(out.logProb)).toBe(true);
    expect(out.timings.totalMs).toBeGreaterThanOrEqual(out.timings.decodeMs);
  });

  it("fails a corrupt image alone, without retries, naming the reason", async () => {
    const imageKey = "images/0000000000000000000000000000000000000000000000000000000000000000.png";
    await store.put(imageKey, Buffer.from("not a png at all"));
    const job = await queue.add("caption", { kind: "image", requestId: "bad", imageKey });
    await expect(job.waitUntilFinished(events)).rejects.toThrow(/^(format|decode):/);
    expect((await queue.getJob(job.id!))?.attemptsMade).toBe(1);
  });

  it("captions a bulk shard from its stored features and writes its results", async () => {
    const info = await readDatasetInfo(store, dataset);
    const shardId = info.shards[0]!;
    const job = await bulkQueue.add("bulk-shard", {
      kind: "bulk-shard",
      batchId: "b1",
      dataset,
      shardId,
      shardKey: keys.shardList(dataset, shardId),
    });
    const result = (await job.waitUntilFinished(bulkEvents)) as { captioned: number; resultsKey: string };
    expect(result.captioned).toBe(8);
    const lines = (await store.get(result.resultsKey))
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as BulkResultLine);
    expect(lines).toHaveLength(8);
    for (const line of lines) {
      expect(line.key).toMatch(/^images\/[0-9a-f]{64}\.(png|jpg)$/);
      expect(typeof line.caption).toBe("string");
    }
  });

  it("answers a single request while a bulk job's shards are still queued (bulk cannot starve it)", async () => {
    const info = await readDatasetInfo(store, dataset);
    const shardId = info.shards[0]!;
    // 40 shards (the same one under 40 batch ids) on the bulk queue, one taken at a time.
    await bulkQueue.addBulk(
      Array.from({ length: 40 }, (_, i) => ({
        name: "bulk-shard",
        data: {
          kind: "bulk-shard" as const,
          batchId: `starve${i}`,
          dataset,
          shardId,
          shardKey: keys.shardList(dataset, shardId),
        },
      })),
    );
    const job = await queue.add("caption", {
      kind: "image",
      requestId: "during-bulk",
      imageKey: await storeImage(1002),
    });
    const out = (await job.waitUntilFinished(events)) as CaptionResult;
    expect(typeof out.caption).toBe("string");
    const left = await bulkQueue.getJobCounts("waiting", "active");
    expect((left.waiting ?? 0) + (left.active ?? 0)).toBeGreaterThan(0);
    // The bulk job still finishes.
    while ((await bulkQueue.getJobCounts("completed")).completed! < 41)
      await new Promise((r) => setTimeout(r, 100));
  });

  it("hot-reloads a newly published model without failing requests in flight", async () => {
    const keysToCaption = await Promise.all(Array.from({ length: 24 }, (_, i) => storeImage(2000 + i)));
    const jobs = await Promise.all(
      keysToCaption
        .slice(0, 12)
        .map((imageKey, i) => queue.add("caption", { kind: "image", requestId: `hot-${i}`, imageKey })),
    );
    // Publish a different epoch of the same run while those run, then reload and send more.
    await publishModel(store, "default", {
      runId,
      epoch: 1,
      encoderId: await captioner
        .holder("default")
        .acquire()
        .then((l) => {
          l.release();
          return l.loaded.pointer.encoderId;
        }),
      cider: 0,
    });
    const reloading = captioner.refreshAll();
    const more = await Promise.all(
      keysToCaption
        .slice(12)
        .map((imageKey, i) => queue.add("caption", { kind: "image", requestId: `hot2-${i}`, imageKey })),
    );
    await reloading;
    // Requests in flight finish on whichever model they started with; one sent after the reload
    // must be served by the new model (the jobs above may all finish before the reload on a fast decoder).
    const after = await queue.add("caption", {
      kind: "image",
      requestId: "hot-after",
      imageKey: keysToCaption[0]!,
    });
    const results = (await Promise.all(
      [...jobs, ...more, after].map((j) => j.waitUntilFinished(events)),
    )) as CaptionResult[];
    expect(results).toHaveLength(25);
    expect(results.at(-1)!.modelVersion).toBe(`default@${runId}/epoch-1`);
    expect(captioner.holder("default").version).toBe(`default@${runId}/epoch-1`);
  });

  it("refuses a model trained on another encoder and keeps serving the old one", async () => {
    const before = captioner.holder("default").version;
    await publishModel(store, "default", { runId, epoch: 2, encoderId: "some-other-encoder", cider: 0 });
    await captioner.refreshAll();
    expect(captioner.holder("default").version).toBe(before);
  });
});
