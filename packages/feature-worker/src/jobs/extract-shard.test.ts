import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore, type ShardList } from "@capflow/common";
import { PIXELS_PER_IMAGE, type Encoder } from "@capflow/ml";
import { drawImage } from "../../../../test/support/images.ts";
import { extractShard } from "./extract-shard.ts";

/** A stand-in encoder: each row is the mean of its pixels repeated (no model, deterministic). */
const fakeEncoder: Encoder = {
  id: "fake",
  dim: 4,
  runtime: "onnx",
  backend: "fake",
  encode(batch, n) {
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let p = i * PIXELS_PER_IMAGE; p < (i + 1) * PIXELS_PER_IMAGE; p++) sum += batch[p]!;
      out.fill(sum / PIXELS_PER_IMAGE, i * 4, (i + 1) * 4);
    }
    return Promise.resolve(out);
  },
  dispose: () => Promise.resolve(),
};

describe("extractShard with crash isolation", () => {
  let dir: string;
  let store: LocalStore;
  let shard: ShardList;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-extract-"));
    store = new LocalStore(dir);
    const images: ShardList["images"] = [];
    for (let i = 0; i < 7; i++) {
      const key = `images/img${i}.png`;
      await store.put(key, await drawImage(i));
      images.push({ id: `img${i}`, key });
    }
    await store.put("images/broken.png", Buffer.from("not an image"));
    images.splice(3, 0, { id: "broken", key: "images/broken.png" });
    shard = { dataset: "d", shardId: "s", images };
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it("names every image before its read starts, one write per batch", async () => {
    const writes: Array<{ ids: string[]; alone: boolean }> = [];
    const out = await extractShard(store, fakeEncoder, shard, {
      batchSize: 2,
      maxPixels: 50_000_000,
      beforeRead: (ids, alone) => {
        writes.push({ ids, alone });
        return Promise.resolve();
      },
    });
    // 4 batches, look-ahead 2: the batch being encoded and the two being decoded.
    expect(writes).toEqual([
      { ids: ["img0", "img1", "img2", "broken", "img3", "img4"], alone: false },
      { ids: ["img2", "broken", "img3", "img4", "img5", "img6"], alone: false },
      { ids: ["img3", "img4", "img5", "img6"], alone: false },
      { ids: ["img5", "img6"], alone: false },
    ]);
    expect(out.ids).toEqual(["img0", "img1", "img2", "img3", "img4", "img5", "img6"]);
    expect(out.failures.map((f) => [f.id, f.reason])).toEqual([["broken", "format"]]);
  });

  it("runs suspects alone first, skips quarantined images, and returns shard order", async () => {
    const clean = await extractShard(store, fakeEncoder, shard, { batchSize: 3, maxPixels: 50_000_000 });
    const writes: Array<{ ids: string[]; alone: boolean }> = [];
    const seen: string[] = [];
    const out = await extractShard(store, fakeEncoder, shard, {
      batchSize: 3,
      maxPixels: 50_000_000,
      alone: ["img5", "broken", "img1"],
      quarantine: [{ id: "img2", reason: "crashed_worker", message: "died twice" }],
      beforeRead: (ids, alone) => {
        writes.push({ ids, alone });
        return Promise.resolve();
      },
      onImage: (s) => seen.push(s),
    });
    expect(writes.slice(0, 4)).toEqual([
      { ids: ["img5"], alone: true },
      { ids: ["broken"], alone: true },
      { ids: ["img1"], alone: true },
      { ids: [], alone: false },
    ]);
    expect(writes.slice(4)).toEqual([
      { ids: ["img0", "img3", "img4", "img6"], alone: false },
      { ids: ["img6"], alone: false },
    ]);
    expect(out.ids).toEqual(["img0", "img1", "img3", "img4", "img5", "img6"]);
    expect(out.failures.map((f) => [f.id, f.reason])).toEqual([
      ["img2", "crashed_worker"],
      ["broken", "format"],
    ]);
    expect(seen.filter((s) => s === "crashed_worker")).toHaveLength(1);
    // Same vectors as a clean run, row for row (minus the quarantined image).
    for (const [row, id] of out.ids.entries()) {
      const cleanRow = clean.ids.indexOf(id);
      expect(out.vectors.subarray(row * 4, row * 4 + 4)).toEqual(
        clean.vectors.subarray(cleanRow * 4, cleanRow * 4 + 4),
      );
    }
  });

  it("stops before reading when the journal write fails", async () => {
    const read: string[] = [];
    const spy: LocalStore = Object.create(store) as LocalStore;
    spy.get = (key: string) => {
      read.push(key);
      return store.get(key);
    };
    await expect(
      extractShard(spy, fakeEncoder, shard, {
        batchSize: 2,
        maxPixels: 50_000_000,
        alone: ["img4"],
        beforeRead: () => Promise.reject(new Error("lost the job")),
      }),
    ).rejects.toThrow("lost the job");
    expect(read).toEqual([]);
  });
});

describe("extractShard with augmented views", () => {
  let dir: string;
  let store: LocalStore;
  let shard: ShardList;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-extract-views-"));
    store = new LocalStore(dir);
    for (let i = 0; i < 3; i++) await store.put(`images/img${i}.png`, await drawImage(i));
    await store.put("images/broken.png", Buffer.from("not an image"));
    shard = {
      dataset: "d",
      shardId: "s",
      recipe: "mix",
      images: [
        { id: "img0", key: "images/img0.png", views: 2 },
        { id: "broken", key: "images/broken.png", views: 2 },
        { id: "img1", key: "images/img1.png" }, // a validation or test image: clean only
        { id: "img2", key: "images/img2.png", views: 1 },
      ],
    };
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it("ties each view to its source image, clean rows unchanged, and a redone shard gives the same bytes", async () => {
    const plain = await extractShard(
      store,
      fakeEncoder,
      { ...shard, images: shard.images.map(({ id, key }) => ({ id, key })) },
      { batchSize: 2, maxPixels: 50_000_000 },
    );
    expect(plain.views).toBeUndefined();
    const progress: number[] = [];
    const out = await extractShard(store, fakeEncoder, shard, {
      batchSize: 2,
      maxPixels: 50_000_000,
      onBatch: ({ done, total }) => progress.push(done / total),
    });
    // The clean matrix is what it is without views: serving and evaluation read only it.
    expect(out.ids).toEqual(["img0", "img1", "img2"]);
    expect(out.vectors).toEqual(plain.vectors);
    expect(out.failures.map((f) => f.id)).toEqual(["broken"]);
    expect(out.views?.recipe).toBe("mix");
    expect(out.views?.rows).toEqual([
      { source: "img0", view: 1 },
      { source: "img0", view: 2 },
      { source: "img2", view: 1 },
    ]);
    expect(out.views?.vectors).toHaveLength(3 * 4);
    expect(progress.at(-1)).toBe(1);

    const again = await extractShard(store, fakeEncoder, shard, { batchSize: 3, maxPixels: 50_000_000 });
    expect(Buffer.from(again.views!.vectors.buffer).equals(Buffer.from(out.views!.vectors.buffer))).toBe(
      true,
    );
  });
});
