import { describe, expect, it } from "vitest";
import { featuresJobId, shardIdFor, ShardBuilder, splitFor, viewsFor } from "./sharding.ts";

describe("sharding", () => {
  it("names a shard by its dataset and content", () => {
    const a = shardIdFor("emoji", ["x", "y"]);
    expect(a).toMatch(/^s[0-9a-f]{24}$/);
    expect(shardIdFor("emoji", ["x", "y"])).toBe(a);
    expect(shardIdFor("emoji", ["y", "x"])).not.toBe(a);
    expect(shardIdFor("other", ["x", "y"])).not.toBe(a);
    expect(featuresJobId("emoji", a)).not.toContain(":");
  });

  it("splits about 80/10/10, stably", () => {
    const counts = { train: 0, val: 0, test: 0 };
    for (let i = 0; i < 10_000; i++) counts[splitFor(`img${i}.jpg`)]++;
    expect(counts.train / 10_000).toBeCloseTo(0.8, 1);
    expect(counts.val / 10_000).toBeCloseTo(0.1, 1);
    expect(splitFor("a.jpg")).toBe(splitFor("a.jpg"));
  });

  it("cuts full shards and flushes the rest", () => {
    const b = new ShardBuilder(2);
    expect(b.add("a")).toBeUndefined();
    expect(b.add("b")).toEqual(["a", "b"]);
    expect(b.add("c")).toBeUndefined();
    expect(b.flush()).toEqual(["c"]);
    expect(b.flush()).toBeUndefined();
    expect(() => new ShardBuilder(0)).toThrow(/positive/);
  });

  it("gives augmented views to training images only, and makes them part of the shard's name", () => {
    expect([viewsFor("train", 2), viewsFor("val", 2), viewsFor("test", 2), viewsFor("train", 0)]).toEqual([
      2, 0, 0, 0,
    ]);
    const plain = shardIdFor("d", ["a", "b"]);
    expect(shardIdFor("d", ["a", "b"], { recipe: "mix", views: [0, 0] })).toBe(plain);
    const two = shardIdFor("d", ["a", "b"], { recipe: "mix", views: [2, 0] });
    expect(two).not.toBe(plain);
    expect(shardIdFor("d", ["a", "b"], { recipe: "mix", views: [1, 0] })).not.toBe(two);
    expect(shardIdFor("d", ["a", "b"], { recipe: "lowres", views: [2, 0] })).not.toBe(two);
    expect(shardIdFor("d", ["a", "b"], { recipe: "mix", views: [2, 0] })).toBe(two);
  });
});
