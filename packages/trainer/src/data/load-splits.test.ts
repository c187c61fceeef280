import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeNpy, keys, LocalStore, putJson, type ManifestRow, type ShardIndex } from "@capflow/common";
import { loadSplits, trainingRows } from "./load-splits.ts";

const DIM = 3;

describe("loadSplits with augmented views", () => {
  let dir: string;
  let store: LocalStore;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-splits-"));
    store = new LocalStore(dir);
    const rows: ManifestRow[] = [
      { id: "a", key: "images/a.png", file: "a.png", split: "train", captions: ["a dog"] },
      { id: "b", key: "images/b.png", file: "b.png", split: "train", captions: ["a cat", "cat"] },
      { id: "v", key: "images/v.png", file: "v.png", split: "val", captions: ["a ghost"] },
      { id: "t", key: "images/t.png", file: "t.png", split: "test", captions: ["a heart"] },
    ];
    await store.put(keys.manifest("ds"), Buffer.from(rows.map((r) => JSON.stringify(r) + "\n").join("")));
    await putJson(store, keys.datasetInfo("ds"), {
      name: "ds",
      format: "jsonl-folder",
      images: 4,
      captions: 5,
      splits: { train: 2, val: 1, test: 1 },
      shards: ["s1"],
      shardSize: 8,
    });
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

  it("reads views for training images only; validation and test stay the clean vectors", async () => {
    const splits = await loadSplits(store, "ds", "enc");
    expect(splits.train.ids).toEqual(["a", "b"]);
    expect([...splits.train.features]).toEqual([1, 1, 1, 2, 2, 2]);
    expect([...splits.train.views!.source]).toEqual([0, 0, 1]);
    expect([...splits.train.views!.features]).toEqual([10, 10, 10, 11, 11, 11, 20, 20, 20]);
    expect(splits.val.views).toBeUndefined();
    expect(splits.test.views).toBeUndefined();
    expect([...splits.val.features]).toEqual([3, 3, 3]);
    expect([...splits.test.features]).toEqual([4, 4, 4]);
  });

  it("makes each view a training row with its source image's captions", async () => {
    const splits = await loadSplits(store, "ds", "enc");
    const cleaned = [[["a", "dog"]], [["a", "cat"], ["cat"]]];
    const rows = trainingRows(splits.train, cleaned);
    expect(rows.views).toBe(3);
    expect(rows.cleaned).toEqual([...cleaned, cleaned[0], cleaned[0], cleaned[1]]);
    expect([...rows.features]).toEqual([1, 1, 1, 2, 2, 2, 10, 10, 10, 11, 11, 11, 20, 20, 20]);
  });

  it("leaves the views out when asked (views: false)", async () => {
    const splits = await loadSplits(store, "ds", "enc", { views: false });
    expect(splits.train.views).toBeUndefined();
    expect(trainingRows(splits.train, [[["a"]], [["b"]]]).features).toBe(splits.train.features);
  });
});
