import { describe, expect, it } from "vitest";
import { shardOrder, streamWindows, type LoadedShard, type ShardSource } from "./shard-stream.ts";

const DIM = 3;
const SPLITS = ["train", "val", "test"] as const;

/** Shards of `size` images; image j of shard i has vector [i, j, i*100+j] and a split by j. */
function fakeSource(shards: number, size: number) {
  const stats = { reads: 0, outstanding: 0, maxOutstanding: 0 };
  const ids = Array.from({ length: shards }, (_, i) => `s${i}`);
  const source: ShardSource = async (shardId) => {
    stats.reads++;
    stats.outstanding++;
    stats.maxOutstanding = Math.max(stats.maxOutstanding, stats.outstanding);
    await new Promise((r) => setImmediate(r));
    stats.outstanding--;
    const i = Number(shardId.slice(1));
    const shard: LoadedShard = {
      shardId,
      dim: DIM,
      images: Array.from({ length: size }, (_, j) => ({
        id: `${shardId}-${j}`,
        key: `images/${shardId}-${j}.png`,
        file: `${shardId}-${j}.png`,
        split: SPLITS[j % 3]!,
        captions: [`caption ${i} ${j}`],
      })),
      vectors: Float32Array.from({ length: size * DIM }, (_, k) => {
        const j = Math.floor(k / DIM);
        return [i, j, i * 100 + j][k % DIM]!;
      }),
    };
    return shard;
  };
  return { ids, source, stats };
}

async function collect(it: AsyncIterable<{ images: Array<{ id: string }>; features: Float32Array }>) {
  const ids: string[] = [];
  for await (const w of it) {
    w.images.forEach((img, r) => {
      // Each row's vector travels with its image.
      const [shard, j] = img.id.slice(1).split("-").map(Number);
      expect(Array.from(w.features.subarray(r * DIM, (r + 1) * DIM))).toEqual([shard, j, shard! * 100 + j!]);
      ids.push(img.id);
    });
  }
  return ids;
}

describe("streamWindows", () => {
  it("gives every image of the split once per epoch, in an order fixed by (seed, epoch)", async () => {
    const { ids, source } = fakeSource(10, 6);
    const opts = (epoch: number) => ({
      windowShards: 3,
      split: "train" as const,
      shuffle: { seed: 7, epoch },
    });
    const a = await collect(streamWindows(source, ids, opts(0)));
    const again = await collect(streamWindows(source, ids, opts(0)));
    const next = await collect(streamWindows(source, ids, opts(1)));
    expect(a).toHaveLength(20);
    expect(new Set(a).size).toBe(20);
    expect(a.every((id) => Number(id.split("-")[1]) % 3 === 0)).toBe(true);
    expect(again).toEqual(a);
    expect(next).not.toEqual(a);
    expect([...next].sort()).toEqual([...a].sort());
  });

  it("shuffles shards across the epoch and rows within a window", async () => {
    const { ids, source } = fakeSource(12, 8);
    const order = shardOrder(ids, { shuffle: { seed: 1, epoch: 0 } });
    expect(order).not.toEqual(ids);
    expect([...order].sort()).toEqual([...ids].sort());
    const windows: string[][] = [];
    for await (const w of streamWindows(source, ids, { windowShards: 2, shuffle: { seed: 1, epoch: 0 } }))
      windows.push(w.images.map((i) => i.id));
    expect(windows).toHaveLength(6);
    // A window holds exactly its two shards' rows, not in shard order.
    const shardsOf = (w: string[]) => [...new Set(w.map((id) => id.split("-")[0]))].sort();
    expect(shardsOf(windows[0]!)).toEqual([order[0], order[1]].sort());
    expect(windows[0]!.slice(0, 8).every((id) => id.startsWith(`${order[0]}-`))).toBe(false);
  });

  it("keeps order without a shuffle", async () => {
    const { ids, source } = fakeSource(4, 3);
    const got = await collect(streamWindows(source, ids, { windowShards: 3 }));
    expect(got).toEqual(ids.flatMap((s) => [0, 1, 2].map((j) => `${s}-${j}`)));
  });

  it("reads ahead while a window is consumed, never more than window + prefetch shards", async () => {
    const { ids, source, stats } = fakeSource(20, 4);
    const stream = streamWindows(source, ids, { windowShards: 2, prefetchShards: 3 });
    const first = await stream.next();
    expect(first.done).toBe(false);
    // The first window's 2 shards came back, and the next 2 + 3 were already asked for.
    expect(stats.reads).toBe(2 + 2 + 3);
    for await (const _ of stream) expect(stats.reads).toBeLessThanOrEqual(20);
    expect(stats.reads).toBe(20);
    expect(stats.maxOutstanding).toBeLessThanOrEqual(5);
  });

  it("fails the stream when a shard cannot be read", async () => {
    const { ids, source } = fakeSource(5, 2);
    const failing = (id: string) => (id === "s3" ? Promise.reject(new Error("no such shard")) : source(id));
    await expect(collect(streamWindows(failing, ids, { windowShards: 2 }))).rejects.toThrow(/no such shard/);
  });
});
