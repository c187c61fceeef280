import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeNpy, keys, LocalStore, putJson, type ShardIndex, type ShardList } from "@capflow/common";
import { scanShards } from "./scan-shards.ts";
import { storeShardSource, streamWindows } from "./shard-stream.ts";

const DIM = 3;

describe("the shard stream with augmented views", () => {
  let dir: string;
  let store: LocalStore;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-views-"));
    store = new LocalStore(dir);
    const list: ShardList = {
      dataset: "ds",
      shardId: "s1",
      images: [
        { id: "a", key: "images/a.png", file: "a.png", split: "train", captions: ["a dog"], views: 2 },
        { id: "b", key: "images/b.png", file: "b.png", split: "train", captions: ["a cat", "cat"], views: 1 },
        { id: "v", key: "images/v.png", file: "v.png", split: "val", captions: ["a ghost"] },
        { id: "t", key: "images/t.png", file: "t.png", split: "test", captions: ["a heart"] },
      ],
    };
    await putJson(store, keys.datasetInfo("ds"), { name: "ds", shards: ["s1"], shardSize: 8 });
    await putJson(store, keys.shardList("ds", "s1"), list);
    const clean = Float32Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    // Views of a, b and (wrongly, e.g. a split list changed after extraction) of the val image.
    const views = Float32Array.from([10, 10, 10, 11, 11, 11, 20, 20, 20, 30, 30, 30]);
    const index: ShardIndex = {
      encoderId: "enc",
      dataset: "ds",
      shardId: "s1",
      dtype: "float32",
      dim: DIM,
      ids: ["a", "b", "v", "t"],
      failures: [],
      views: {
        recipe: "mix",
        rows: [
          { source: "a", view: 1 },
          { source: "a", view: 2 },
          { source: "b", view: 1 },
          { source: "v", view: 1 },
        ],
      },
    };
    await store.put(keys.featureMatrix("enc", "ds", "s1"), encodeNpy(clean, 4, DIM, "float32"));
    await store.put(keys.featureViewsMatrix("enc", "ds", "s1"), encodeNpy(views, 4, DIM, "float32"));
    await putJson(store, keys.featureIndex("enc", "ds", "s1"), index);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const rows = async (split: "train" | "val" | "test", views: boolean) => {
    const out: Array<{ id: string; captions: string[]; vector: number[] }> = [];
    for await (const w of streamWindows(storeShardSource(store, "ds", "enc", { views }), ["s1"], { split }))
      w.images.forEach((img, r) =>
        out.push({
          id: img.id,
          captions: img.captions,
          vector: [...w.features.subarray(r * DIM, (r + 1) * DIM)],
        }),
      );
    return out;
  };

  it("makes each view of a training image a training row with its source image's captions", async () => {
    expect(await rows("train", true)).toEqual([
      { id: "a", captions: ["a dog"], vector: [1, 1, 1] },
      { id: "b", captions: ["a cat", "cat"], vector: [2, 2, 2] },
      { id: "a", captions: ["a dog"], vector: [10, 10, 10] },
      { id: "a", captions: ["a dog"], vector: [11, 11, 11] },
      { id: "b", captions: ["a cat", "cat"], vector: [20, 20, 20] },
    ]);
  });

  it("keeps validation and test the clean vectors, and leaves views out unless asked", async () => {
    expect((await rows("val", true)).map((r) => r.vector)).toEqual([[3, 3, 3]]);
    expect((await rows("test", true)).map((r) => r.vector)).toEqual([[4, 4, 4]]);
    expect((await rows("train", false)).map((r) => r.vector)).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
  });

  it("counts the training images' views in the scan, not the val image's", async () => {
    const scan = await scanShards(store, "ds", "enc");
    expect(scan.trainViews).toBe(3);
    expect(scan.images).toEqual({ train: 2, val: 1, test: 1 });
    // Views repeat captions: the word counts are the clean images' alone.
    expect(scan.trainWords.get("a")).toBe(2);
  });
});
