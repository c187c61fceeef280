import { afterAll, describe, expect, it } from "vitest";
import {
  createQueue,
  createRedis,
  keys,
  readDatasetInfo,
  readManifest,
  type ManifestRow,
} from "@capflow/common";
import { buildEmojiDataset, ingestDataset } from "@capflow/ingest";
import { freshPrefix, localStore, redisUrl, tempDir } from "../../../test/support/services.ts";

// The ci emoji set through the same path real data takes (Flickr8k captions.txt), on real Redis.
describe("ingesting the ci emoji dataset", () => {
  const conn = createRedis(redisUrl(), "producer");
  const queue = createQueue("features", { connection: conn, prefix: freshPrefix() });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
  });

  it("stores every image once, keeps the held-out styles out of train, and enqueues each shard once over two runs", async () => {
    const dir = await tempDir("emoji");
    await buildEmojiDataset(dir, { size: "ci" });
    const store = await localStore();
    const opts = {
      dataset: "emoji-ci",
      format: "flickr8k-csv" as const,
      dir,
      shardSize: 32,
      onError: "fail" as const,
    };

    const first = await ingestDataset(store, queue, opts);
    expect(first).toMatchObject({ images: 360, shardsEnqueued: 12, shardsAlreadyQueued: 0 });
    expect(first.issues).toEqual({ malformed: 0, "missing-image": 0, skipped: 0 });
    const second = await ingestDataset(store, queue, opts);
    expect(second).toMatchObject({ images: 360, shardsEnqueued: 0, shardsAlreadyQueued: 12 });
    expect(await queue.count()).toBe(12);

    const rows: ManifestRow[] = [];
    for await (const row of readManifest(store, "emoji-ci")) rows.push(row);
    expect(new Set(rows.map((r) => r.id)).size).toBe(360);
    const bySplit = (s: string) => rows.filter((r) => r.split === s).map((r) => r.file);
    expect(bySplit("train").every((f) => /^(noto|twemoji|openmoji|noto-v1)-/.test(f))).toBe(true);
    expect(bySplit("val").every((f) => f.startsWith("emojione-"))).toBe(true);
    expect(bySplit("test").every((f) => f.startsWith("fluent-"))).toBe(true);
    const dog = rows.find((r) => r.file === "fluent-1f436.png");
    expect(dog?.captions).toContain("dog face");
    expect(await store.head(dog!.key)).toBeDefined();
    const info = await readDatasetInfo(store, "emoji-ci");
    expect(info.splits).toEqual({ train: 240, val: 60, test: 60 });
    expect(await store.head(keys.shardList("emoji-ci", info.shards[0]!))).toBeDefined();
  });
});
