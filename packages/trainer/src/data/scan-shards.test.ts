import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { keys, LocalStore, putJson, type ShardIndex, type ShardList, type Split } from "@capflow/common";
import { buildVocabulary, cleanCaption, vocabularyFromCounts } from "@capflow/ml";
import { FeaturesNotReadyError, scanShards } from "./scan-shards.ts";
import { ShardWithoutCaptionsError } from "./shard-stream.ts";

const ENCODER = "enc";
type Image = { id: string; split?: Split; captions?: string[]; quarantined?: boolean };

/** A dataset of shard lists and feature indexes only: the scan never reads a matrix. */
async function dataset(shards: Record<string, Image[]>, opts: { uncommitted?: string[] } = {}) {
  const store = new LocalStore(await fs.mkdtemp(path.join(os.tmpdir(), "scan-")));
  const ids = Object.keys(shards);
  await putJson(store, keys.datasetInfo("d"), { name: "d", shards: ids, shardSize: 4 });
  for (const [shardId, images] of Object.entries(shards)) {
    const list: ShardList = {
      dataset: "d",
      shardId,
      images: images.map((i) => ({
        id: i.id,
        key: `images/${i.id}.png`,
        split: i.split,
        captions: i.captions,
      })),
    };
    await putJson(store, keys.shardList("d", shardId), list);
    if (opts.uncommitted?.includes(shardId)) continue;
    const index: ShardIndex = {
      encoderId: ENCODER,
      dataset: "d",
      shardId,
      dtype: "float32",
      dim: 2,
      ids: images.filter((i) => !i.quarantined).map((i) => i.id),
      failures: [],
    };
    await putJson(store, keys.featureIndex(ENCODER, "d", shardId), index);
  }
  return store;
}

const shards: Record<string, Image[]> = {
  a: [
    { id: "a1", split: "train", captions: ["A red circle.", "a circle"] },
    { id: "a2", split: "val", captions: ["a blue square"] },
    { id: "a3", split: "train", captions: ["a very long caption of nine words in all"], quarantined: true },
  ],
  b: [
    { id: "b1", split: "test", captions: ["a green star"] },
    { id: "b2", split: "train", captions: ["two red circles"] },
  ],
  c: [{ id: "c1", split: "val", captions: ["a square"] }],
};

describe("scanShards", () => {
  it("counts the images with a vector per split and the shards that hold each split", async () => {
    const scan = await scanShards(await dataset(shards), "d", ENCODER);
    expect(scan.images).toEqual({ train: 2, val: 2, test: 1 });
    expect(scan.shardsWith).toEqual({ train: ["a", "b"], val: ["a", "c"], test: ["b"] });
  });

  it("counts the words of the training captions with a vector only, as buildVocabulary would", async () => {
    const scan = await scanShards(await dataset(shards), "d", ENCODER);
    const train = ["A red circle.", "a circle", "two red circles"].map((c) => cleanCaption(c));
    expect(vocabularyFromCounts(scan.trainWords, { minCount: 1 }).toJSON()).toEqual(
      buildVocabulary(train, { minCount: 1 }).toJSON(),
    );
    expect(scan.trainWords.has("square")).toBe(false);
    // The quarantined image's nine-word caption is not the longest.
    expect(scan.longestTrainCaption).toBe(3);
  });

  it("fails naming the shards that have no committed features", async () => {
    const store = await dataset(shards, { uncommitted: ["b"] });
    await expect(scanShards(store, "d", ENCODER)).rejects.toThrow(FeaturesNotReadyError);
    await expect(scanShards(store, "d", ENCODER)).rejects.toThrow(/1 of 3 shards .* e\.g\. b$/);
  });

  it("fails on a shard list without captions (ingested before lists carried them)", async () => {
    const store = await dataset({ a: [{ id: "a1" }] });
    await expect(scanShards(store, "d", ENCODER)).rejects.toThrow(ShardWithoutCaptionsError);
  });
});
