import { readFileSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DatasetInfo, Split } from "../../dataset/manifest.ts";
import * as keys from "../../store/keys.ts";
import { LocalStore } from "../../store/local-store.ts";
import { putJson } from "../../store/object-store.ts";
import { decodeNpy, encodeNpy, fromFloat16, toFloat16 } from "../npy.ts";
import type { ShardIndex, ShardList } from "../shard-format.ts";
import { exportDataset } from "./export-dataset.ts";

const DIM = 4;
const ENC = "enc-test";
const SPLITS: Split[] = ["train", "val", "test"];
const dirs: string[] = [];
const tmp = async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-export-"));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

/** Image `n`'s vector: values that say which image they belong to. */
const vectorOf = (n: number) => Float32Array.from({ length: DIM }, (_, j) => n + j / 10);

/**
 * A dataset as ingest and the feature worker leave it: shard lists with file, split and captions,
 * and committed shards (index + npy). Every 5th image is quarantined (no vector).
 */
async function writeDataset(store: LocalStore, shardSizes: number[]): Promise<void> {
  let n = 0;
  const shards: string[] = [];
  for (const [s, size] of shardSizes.entries()) {
    const shardId = `s${s}`;
    shards.push(shardId);
    const images = Array.from({ length: size }, () => {
      const i = n++;
      return {
        id: `id${i}`,
        key: `images/${i}.png`,
        file: `f${i}.png`,
        split: SPLITS[i % 3]!,
        captions: [`c${i}`, "x"],
      };
    });
    const list: ShardList = { dataset: "d", shardId, images };
    await putJson(store, keys.shardList("d", shardId), list);
    const kept = images.filter((_, k) => (s * 100 + k) % 5 !== 4);
    const index: ShardIndex = {
      encoderId: ENC,
      dataset: "d",
      shardId,
      dtype: "float32",
      dim: DIM,
      ids: kept.map((i) => i.id),
      failures: images
        .filter((i) => !kept.includes(i))
        .map((i) => ({ id: i.id, reason: "decode" as const, message: "x" })),
    };
    const vectors = new Float32Array(kept.length * DIM);
    kept.forEach((img, r) => vectors.set(vectorOf(Number(img.id.slice(2))), r * DIM));
    await store.put(keys.featureMatrix(ENC, "d", shardId), encodeNpy(vectors, kept.length, DIM));
    await putJson(store, keys.featureIndex(ENC, "d", shardId), index);
  }
  const info: DatasetInfo = {
    name: "d",
    format: "test",
    images: n,
    captions: 2 * n,
    splits: { train: 0, val: 0, test: 0 },
    shards,
    shardSize: Math.max(...shardSizes),
  };
  await putJson(store, keys.datasetInfo("d"), info);
}

/** The vectors of every part, concatenated, read with capflow's own npy reader. */
async function readParts(target: LocalStore, files: string[]) {
  const parts = await Promise.all(files.map(async (f) => decodeNpy(await target.get(f))));
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  const all = new Float32Array(rows * DIM);
  let at = 0;
  for (const p of parts) {
    all.set(p.data, at);
    at += p.data.length;
  }
  return { parts, all };
}

describe("exportDataset", () => {
  it("streams the kept rows of one split into parts cut across shards, in shard and row order", async () => {
    const source = new LocalStore(await tmp());
    const target = new LocalStore(await tmp());
    await writeDataset(source, [6, 0, 9, 5]);
    const m = await exportDataset(source, target, {
      dataset: "d",
      encoderId: ENC,
      split: "val",
      rowsPerFile: 2,
      prefetch: 1,
    });
    const expected: number[] = [];
    let n = 0;
    const quarantined: number[] = [];
    for (const [s, size] of [6, 0, 9, 5].entries()) {
      for (let k = 0; k < size; k++, n++) {
        if ((s * 100 + k) % 5 === 4) quarantined.push(n);
        else if (n % 3 === 1) expected.push(n);
      }
    }
    expect(m.rows).toBe(expected.length);
    expect(m.quarantined).toBe(quarantined.filter((i) => i % 3 === 1).length);
    expect(m.parts.map((p) => p.rows)).toEqual(planned(expected.length, 2));
    const { parts, all } = await readParts(
      target,
      m.parts.map((p) => p.embeddings),
    );
    expect(parts.every((p) => p.cols === DIM && p.dtype === "float32")).toBe(true);
    const want = new Float32Array(expected.length * DIM);
    expected.forEach((i, r) => want.set(vectorOf(i), r * DIM));
    expect(Array.from(all)).toEqual(Array.from(want));
    expect(JSON.parse((await target.get("export.json")).toString())).toEqual(m);
  });

  it("writes float16 as the same half-precision rounding as the feature shards use", async () => {
    const source = new LocalStore(await tmp());
    const target = new LocalStore(await tmp());
    await writeDataset(source, [7, 7]);
    const m = await exportDataset(source, target, { dataset: "d", encoderId: ENC, dtype: "float16" });
    const { parts } = await readParts(
      target,
      m.parts.map((p) => p.embeddings),
    );
    expect(parts[0]!.dtype).toBe("float16");
    const ids = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 12, 13];
    const want = new Float32Array(ids.length * DIM);
    ids.forEach((i, r) => want.set(vectorOf(i), r * DIM));
    expect(Array.from(parts[0]!.data)).toEqual(Array.from(fromFloat16(toFloat16(want))));
  });

  it("fails, and writes no export.json, when a shard changes between counting and writing", async () => {
    const source = new LocalStore(await tmp());
    const target = new LocalStore(await tmp());
    await writeDataset(source, [6, 6]);
    const run = exportDataset(source, target, {
      dataset: "d",
      encoderId: ENC,
      onProgress: ({ phase, done, total }) => {
        if (phase !== "count" || done !== total) return;
        // Between the passes, the feature job of s1 is redone with one vector fewer (a new
        // quarantine); written synchronously so it lands before the second pass reads s1.
        const file = (key: string) => path.join(source.location, key);
        const index = JSON.parse(readFileSync(file(keys.featureIndex(ENC, "d", "s1")), "utf8")) as ShardIndex;
        index.ids.pop();
        const matrix = encodeNpy(new Float32Array(index.ids.length * DIM), index.ids.length, DIM);
        writeFileSync(file(keys.featureMatrix(ENC, "d", "s1")), matrix);
        writeFileSync(file(keys.featureIndex(ENC, "d", "s1")), JSON.stringify(index));
      },
    });
    await expect(run).rejects.toThrow(/changed during the export/);
    expect(await target.head("export.json")).toBeUndefined();
  });
});

function planned(rows: number, per: number): number[] {
  return Array.from({ length: Math.ceil(rows / per) }, (_, i) => Math.min(per, rows - i * per));
}
