import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import {
  createQueue,
  createRedis,
  decodeNpy,
  keys,
  readShardFeatures,
  type DatasetInfo,
  getJson,
  type ObjectStore,
  createQueueEvents,
} from "@capflow/common";
import { ingestDataset } from "@capflow/ingest";
import { createFeatureWorker, loadEncoder, type Encoder } from "@capflow/feature-worker";
import { freshPrefix, localStore, redisUrl, tempDir } from "../../../test/support/services.ts";
import { drawImage, writeJsonlDataset } from "../../../test/support/images.ts";

// Real Redis, a real local store, real images and the real pretrained encoder on ONNX Runtime.
describe("feature extraction through the queue", () => {
  let encoder: Encoder;
  let store: ObjectStore;
  const prefix = freshPrefix();
  const conn = createRedis(redisUrl(), "producer");
  const workerConn = createRedis(redisUrl(), "worker");
  const queue = createQueue("features", { connection: conn, prefix });
  const events = createQueueEvents("features", { connection: workerConn, prefix });

  beforeAll(async () => {
    encoder = await loadEncoder({
      runtime: "onnx",
      cacheDir: await tempDir("encoder").then(() => undefined),
    });
    store = await localStore();
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
    workerConn.disconnect();
    await encoder?.dispose();
  });

  it("ingests twice but enqueues each shard once", async () => {
    const dir = await writeJsonlDataset(await tempDir("ds"), 10, {
      "text.jpg": Buffer.from("I am not an image"),
      "truncated.png": (await drawImage(99)).subarray(0, 200),
    });
    const opts = {
      dataset: "drawn",
      format: "jsonl-folder" as const,
      dir,
      shardSize: 5,
      onError: "skip" as const,
    };
    const first = await ingestDataset(store, queue, opts);
    expect(first).toMatchObject({ images: 12, shards: 3, shardsEnqueued: 3, shardsAlreadyQueued: 0 });
    const second = await ingestDataset(store, queue, opts);
    expect(second).toMatchObject({ images: 12, shards: 3, shardsEnqueued: 0, shardsAlreadyQueued: 3 });
    expect(await queue.count()).toBe(3);
  });

  it("turns every shard into vectors or quarantined images, and a redone job rewrites nothing", async () => {
    const completed = new Set<string>();
    const allDone = new Promise<void>((resolve) =>
      events.on("completed", ({ jobId }) => {
        completed.add(jobId);
        if (completed.size === 3) resolve();
      }),
    );
    const worker = createFeatureWorker({
      store,
      encoder,
      connection: workerConn,
      prefix,
      log: pino({ level: "silent" }),
      batchSize: 4,
      concurrency: 1,
      dtype: "float32",
      maxPixels: 50_000_000,
    });
    await allDone;
    const info = await getJson<DatasetInfo>(store, keys.datasetInfo("drawn"));
    const vectors: string[] = [];
    const quarantined: Array<{ id: string; reason: string }> = [];
    for (const shardId of info.shards) {
      const { index, vectors: data } = await readShardFeatures(store, encoder.id, "drawn", shardId);
      expect(data.length).toBe(index.ids.length * 2048);
      expect(data.every(Number.isFinite)).toBe(true);
      vectors.push(...index.ids);
      quarantined.push(...index.failures);
    }
    // Conservation: ingested = vectors ∪ quarantine, disjoint.
    expect(vectors.length).toBe(10);
    expect(quarantined.map((f) => f.reason).sort()).toEqual(["decode", "format"]);
    expect(new Set([...vectors, ...quarantined.map((q) => q.id)]).size).toBe(12);

    // Redo one job by hand: the committed index makes it a no-op with identical bytes.
    const shardId = info.shards[0]!;
    const before = await store.get(keys.featureMatrix(encoder.id, "drawn", shardId));
    const job = await queue.add("shard", {
      dataset: "drawn",
      shardId,
      shardKey: keys.shardList("drawn", shardId),
    });
    const redone = await job.waitUntilFinished(events);
    expect(redone).toEqual({ skipped: true });
    expect((await store.get(keys.featureMatrix(encoder.id, "drawn", shardId))).equals(before)).toBe(true);
    expect(decodeNpy(before).cols).toBe(2048);
    await worker.close();
  });
});
