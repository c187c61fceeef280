import { describe, expect, it } from "vitest";
import { planParts, sliceShards } from "./export-layout.ts";

describe("export layout", () => {
  it("cuts rows into parts whose file names sort in part order", () => {
    const parts = planParts(25, 10);
    expect(parts.map((p) => [p.firstRow, p.rows])).toEqual([
      [0, 10],
      [10, 10],
      [20, 5],
    ]);
    expect(parts[2]).toMatchObject({
      embeddings: "img_emb/img_emb_0002.npy",
      metadata: "metadata/metadata_0002.parquet",
    });
    // 12,000 parts: five digits for every one, so "10000" sorts after "09999".
    const many = planParts(12_000, 1);
    expect(many[9_999]!.embeddings).toBe("img_emb/img_emb_09999.npy");
    const names = many.map((p) => p.embeddings);
    expect([...names].sort()).toEqual(names);
  });

  it("finds each part's slices of shards, a shard cut by a boundary in both parts", () => {
    const counts = [8, 0, 8, 4];
    expect(sliceShards(counts, { firstRow: 0, rows: 7 })).toEqual([{ shard: 0, from: 0, to: 7 }]);
    expect(sliceShards(counts, { firstRow: 7, rows: 7 })).toEqual([
      { shard: 0, from: 7, to: 8 },
      { shard: 2, from: 0, to: 6 },
    ]);
    expect(sliceShards(counts, { firstRow: 14, rows: 6 })).toEqual([
      { shard: 2, from: 6, to: 8 },
      { shard: 3, from: 0, to: 4 },
    ]);
  });
});
