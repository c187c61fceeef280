import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  keys,
  readDatasetInfo,
  readManifest,
  readShardFeatures,
  S3Store,
  type ExportManifest,
  type LocalStore,
  type ManifestRow,
} from "@capflow/common";
import { announceEncoder, type Encoder } from "@capflow/feature-worker";
import { drawImage } from "../support/images.ts";
import { prepareExtractedDataset } from "../support/pipeline.ts";
import { localStore, s3StoreOptions, tempDir } from "../support/services.ts";
import { runCapflow as capflow } from "../support/capflow-cli.ts";

/**
 * `capflow export` as a user runs it (a child process) on a dataset that was really ingested and
 * encoded, its output read back by two readers that share no code with capflow: DuckDB for the
 * Parquet metadata and numpy (python3) for the `.npy` vectors.
 */

interface ParquetRow {
  row: number;
  image_id: string;
  file: string;
  split: string;
  shard_id: string;
  shard_row: number;
  caption: string | null;
  captions: string[];
  filename: string;
}

/** Every metadata file of an export through DuckDB, in export row order. */
async function readMetadata(dir: string): Promise<ParquetRow[]> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const glob = path.join(dir, "metadata", "*.parquet").replaceAll("'", "''");
    const result = await conn.runAndReadAll(
      `SELECT row, image_id, file, split, shard_id, shard_row, caption, captions, filename
       FROM read_parquet('${glob}', filename = true) ORDER BY row`,
    );
    return result.getRowObjectsJson().map((r) => ({
      ...(r as unknown as ParquetRow),
      row: Number(r.row),
      shard_row: Number(r.shard_row),
      filename: path.relative(dir, String(r.filename)),
    }));
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

const NUMPY_CHECK = `
import json, sys
import numpy as np
paths, ref_path, rows, dim = sys.argv[1:-3], sys.argv[-3], int(sys.argv[-2]), int(sys.argv[-1])
parts = [np.load(p, mmap_mode="r") for p in paths]
loaded = np.concatenate(parts, axis=0)
ref = np.fromfile(ref_path, dtype="<f4").reshape(rows, dim)
expected = ref.astype(loaded.dtype)
print(json.dumps({
  "shapes": [list(p.shape) for p in parts],
  "dtypes": [str(p.dtype) for p in parts],
  "equal": bool(np.array_equal(loaded, expected)),
  "maxAbsDiff": float(np.max(np.abs(loaded.astype("<f4") - expected.astype("<f4")))),
}))
`;

interface NumpyCheck {
  shapes: number[][];
  dtypes: string[];
  equal: boolean;
  maxAbsDiff: number;
}

/**
 * numpy loads the `.npy` parts (memory-mapped, as embedding-reader does) and compares them with the
 * store's vectors for the same rows, converted by numpy itself to the export's dtype.
 */
async function numpyCheck(npyFiles: string[], reference: Float32Array, dim: number): Promise<NumpyCheck> {
  const refPath = path.join(await tempDir("export-ref"), "ref.f32");
  await fs.writeFile(refPath, Buffer.from(reference.buffer, reference.byteOffset, reference.byteLength));
  const { stdout } = await promisify(execFile)(
    "python3",
    ["-c", NUMPY_CHECK, ...npyFiles, refPath, String(reference.length / dim), String(dim)],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as NumpyCheck;
}

describe("capflow export", () => {
  let store: LocalStore;
  let encoder: Encoder;
  let dataset: string;
  let manifest: Map<string, ManifestRow>;
  /** Image ids with a vector, in the order the export must write them (shards in order, rows in order). */
  let order: Array<{ id: string; shardId: string; shardRow: number }>;
  let vectors: Map<string, Float32Array>;
  let env: Record<string, string>;

  beforeAll(async () => {
    store = await localStore();
    // 20 drawn images and one PNG cut short: ingest takes it (its magic bytes are right), the
    // encoder cannot decode it, so it is quarantined and has no vector to export.
    const truncated = (await drawImage(99, "png")).subarray(0, 80);
    ({ encoder, dataset } = await prepareExtractedDataset(store, {
      images: 20,
      shardSize: 8,
      bad: { "cut-short.png": truncated },
    }));
    // What a running feature worker announces; export's default encoder comes from it.
    await announceEncoder(store, encoder);
    manifest = new Map<string, ManifestRow>();
    for await (const row of readManifest(store, dataset)) manifest.set(row.id, row);
    order = [];
    vectors = new Map();
    for (const shardId of (await readDatasetInfo(store, dataset)).shards) {
      const { index, vectors: v } = await readShardFeatures(store, encoder.id, dataset, shardId);
      index.ids.forEach((id, shardRow) => {
        order.push({ id, shardId, shardRow });
        vectors.set(id, v.slice(shardRow * index.dim, (shardRow + 1) * index.dim));
      });
    }
    env = { CAPFLOW_STORE_DIR: store.location, CAPFLOW_HOME: await tempDir("export-home") };
  });
  afterAll(async () => {
    await store?.close();
  });

  /** The store's vectors for the rows an export wrote, in its row order. */
  const referenceFor = (rows: ParquetRow[]) => {
    const ref = new Float32Array(rows.length * 2048);
    rows.forEach((r, i) => ref.set(vectors.get(r.image_id)!, i * 2048));
    return ref;
  };

  it("writes every vector and caption in one row order, in parts that cut across shards", async () => {
    expect(manifest.size).toBe(21);
    expect(order).toHaveLength(20);
    const out = path.join(await tempDir("export"), "drawn-export");
    const ran = await capflow(["export", dataset, "--to", out, "--rows-per-file", "7"], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^exported 20 images of drawn to /);
    expect(ran.stdout).toMatch(/left out: 1 quarantined images/);

    const written = JSON.parse(await fs.readFile(path.join(out, "export.json"), "utf8")) as ExportManifest;
    expect(written).toMatchObject({ dataset, encoderId: encoder.id, dim: 2048, dtype: "float32", rows: 20 });
    expect(written.quarantined).toBe(1);
    expect(written.parts.map((p) => [p.firstRow, p.rows])).toEqual([
      [0, 7],
      [7, 7],
      [14, 6],
    ]);
    expect((await fs.readdir(out)).sort()).toEqual(["export.json", "img_emb", "metadata"]);

    // DuckDB: the rows, in order, tie each vector to its image and carry its captions unchanged.
    const rows = await readMetadata(out);
    expect(rows.map((r) => r.row)).toEqual([...Array(20).keys()]);
    expect(rows.map((r) => [r.image_id, r.shard_id, r.shard_row])).toEqual(
      order.map((o) => [o.id, o.shardId, o.shardRow]),
    );
    for (const r of rows) {
      const m = manifest.get(r.image_id)!;
      expect({ file: r.file, split: r.split, captions: r.captions, caption: r.caption }).toEqual({
        file: m.file,
        split: m.split,
        captions: m.captions,
        caption: m.captions[0],
      });
      expect(r.filename).toBe(written.parts[Math.floor(r.row / 7)]!.metadata);
    }
    expect(rows.some((r) => r.file.endsWith("cut-short.png"))).toBe(false);

    // numpy: three matrices of 7, 7 and 6 rows, bit for bit the store's vectors of those rows.
    const check = await numpyCheck(
      written.parts.map((p) => path.join(out, p.embeddings)),
      referenceFor(rows),
      2048,
    );
    expect(check).toEqual({
      shapes: [
        [7, 2048],
        [7, 2048],
        [6, 2048],
      ],
      dtypes: ["float32", "float32", "float32"],
      equal: true,
      maxAbsDiff: 0,
    });

    // Again into the same place: the same bytes (an export is a pure function of the store).
    const before = await fs.readFile(path.join(out, written.parts[1]!.embeddings));
    const again = await capflow(["export", dataset, "--to", out, "--rows-per-file", "7"], env);
    expect(again.code, again.stderr).toBe(0);
    expect((await fs.readFile(path.join(out, written.parts[1]!.embeddings))).equals(before)).toBe(true);

    // Fewer parts into the same place would leave two stale ones beside it: refused, nothing touched.
    const fewer = await capflow(["export", dataset, "--to", out], env);
    expect(fewer.code).toBe(1);
    expect(fewer.stderr).toMatch(/already holds 4 files this export would not replace/);
    expect(JSON.parse(await fs.readFile(path.join(out, "export.json"), "utf8"))).toEqual(written);
  });

  it("exports one split as float16 to an S3 prefix, numpy's own rounding agreeing", async () => {
    const s3 = s3StoreOptions();
    const split = "train";
    const expected = order.filter((o) => manifest.get(o.id)!.split === split);
    // The drawn set's hash split gives some images to other splits: a filter that keeps all is no test.
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(order.length);
    const ran = await capflow(
      [
        "export",
        dataset,
        "--to",
        `s3://${s3.bucket}/${s3.prefix}/emb`,
        "--split",
        split,
        "--dtype",
        "float16",
        "--json",
      ],
      {
        ...env,
        CAPFLOW_S3_ENDPOINT: inject("s3Endpoint"),
        CAPFLOW_S3_FORCE_PATH_STYLE: "true",
        CAPFLOW_S3_ACCESS_KEY_ID: s3.accessKeyId!,
        CAPFLOW_S3_SECRET_ACCESS_KEY: s3.secretAccessKey!,
      },
    );
    expect(ran.code, ran.stderr).toBe(0);
    const written = JSON.parse(ran.stdout) as ExportManifest;
    expect(written).toMatchObject({
      split,
      dtype: "float16",
      rows: expected.length,
      parts: [{ firstRow: 0 }],
    });

    // Fetched back with a plain S3 client, into a folder for the two readers.
    const target = new S3Store({ ...s3, prefix: `${s3.prefix}/emb` });
    const local = await tempDir("export-s3");
    const fetched: string[] = [];
    for await (const { key } of target.list("")) {
      await fs.mkdir(path.join(local, path.dirname(key)), { recursive: true });
      await fs.writeFile(path.join(local, key), await target.get(key));
      fetched.push(key);
    }
    await target.close();
    expect(fetched.sort()).toEqual([
      "export.json",
      "img_emb/img_emb_0000.npy",
      "metadata/metadata_0000.parquet",
    ]);

    const rows = await readMetadata(local);
    expect(rows.map((r) => r.image_id)).toEqual(expected.map((o) => o.id));
    expect(new Set(rows.map((r) => r.split))).toEqual(new Set([split]));
    const check = await numpyCheck([path.join(local, "img_emb/img_emb_0000.npy")], referenceFor(rows), 2048);
    expect(check).toMatchObject({ shapes: [[expected.length, 2048]], dtypes: ["float16"], equal: true });
  });

  it("refuses a dataset whose shards are not all encoded, and names what to run", async () => {
    const info = await readDatasetInfo(store, dataset);
    const index = keys.featureIndex(encoder.id, dataset, info.shards[1]!);
    const saved = await store.get(index);
    await store.delete(index);
    try {
      const out = await tempDir("export-partial");
      const ran = await capflow(["export", dataset, "--to", out], env);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toMatch(/1 of 3 shards of "drawn" have no features from .* yet/);
      expect(ran.stderr).toMatch(/capflow status drawn/);
      expect(await fs.readdir(out)).toEqual([]);
    } finally {
      await store.put(index, saved);
    }
  });
});
