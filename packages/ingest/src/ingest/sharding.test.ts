import { describe, expect, it } from "vitest";
import { featuresJobId, shardIdFor, ShardBuilder, splitFor } from "./sharding.ts";

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
});
