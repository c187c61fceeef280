/**
 * `capflow export`'s memory and speed against the size of the dataset: synthetic float16 feature
 * shards (random vectors written straight into a local store, no encoder) with 5 synthetic captions
 * per image, exported (float32 .npy + Parquet, 1,000,000 rows a part) to a local folder.
 *
 *   pnpm bench export [--sizes 10000,100000] [--shard-size 1000]
 *
 * Per size, in a child process of its own (so its peak RSS is the export's): peak RSS, wall time,
 * rows/s, CPU ms per 1,000 rows and the bytes written. The goal is a peak RSS that does not grow
 * with the dataset. The machine may be shared: the load average is printed with each size.
 */
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  exportDataset,
  keys,
  LocalStore,
  npyHeader,
  putJson,
  type DatasetInfo,
  type ShardIndex,
  type ShardList,
} from "@capflow/common";
import { load, rng, tempDir } from "./_support.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000" },
    "shard-size": { type: "string", default: "1000" },
    // Internal: the child process that runs one export.
    child: { type: "string" },
    out: { type: "string" },
  },
});
const DIM = 2048;
const ENCODER = "synthetic-f16";
const DATASET = "synthetic";
const WORDS = Array.from({ length: 1000 }, (_, i) => `w${i}`);
const SPLITS = ["train", "val", "test"] as const;

async function generate(store: LocalStore, images: number, shardSize: number): Promise<void> {
  const info: DatasetInfo = {
    name: DATASET,
    format: "synthetic",
    images,
    captions: images * 5,
    splits: { train: 0, val: 0, test: 0 },
    shards: [],
    shardSize,
  };
  const half = new Uint16Array(shardSize * DIM);
  const rand = rng(images);
  for (let start = 0; start < images; start += shardSize) {
    const n = Math.min(shardSize, images - start);
    const shardId = `s${String(start / shardSize).padStart(6, "0")}`;
    const list: ShardList = { dataset: DATASET, shardId, images: [] };
    for (let i = start; i < start + n; i++) {
      const split = SPLITS[i % 10 < 8 ? 0 : i % 10 === 8 ? 1 : 2]!;
      info.splits[split]++;
      const id = `img${String(i).padStart(8, "0")}`;
      const captions = Array.from({ length: 5 }, () =>
        Array.from(
          { length: 8 + Math.floor(rand() * 8) },
          () => WORDS[Math.floor(rand() * WORDS.length)],
        ).join(" "),
      );
      list.images.push({ id, key: `images/${id}.png`, file: `${i}.jpg`, split, captions });
    }
    // Random halves in [0.125, 0.25): finite, no special cases.
    randomFillSync(half);
    for (let k = 0; k < n * DIM; k++) half[k] = 0x3000 | (half[k]! & 0x3ff);
    const index: ShardIndex = {
      encoderId: ENCODER,
      dataset: DATASET,
      shardId,
      dtype: "float16",
      dim: DIM,
      ids: list.images.map((i) => i.id),
      failures: [],
    };
    await putJson(store, keys.shardList(DATASET, shardId), list);
    await store.put(
      keys.featureMatrix(ENCODER, DATASET, shardId),
      Buffer.concat([npyHeader(n, DIM, "float16"), Buffer.from(half.buffer, 0, n * DIM * 2)]),
    );
    await putJson(store, keys.featureIndex(ENCODER, DATASET, shardId), index);
    info.shards.push(shardId);
  }
  await putJson(store, keys.datasetInfo(DATASET), info);
}

/** One export, in a process of its own; prints one JSON line. */
async function child(storeDir: string, outDir: string): Promise<void> {
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const m = await exportDataset(new LocalStore(storeDir), new LocalStore(outDir), {
    dataset: DATASET,
    encoderId: ENCODER,
  });
  const cpu = process.cpuUsage(cpu0);
  let bytes = 0;
  for (const p of m.parts) {
    bytes += (await fs.stat(path.join(outDir, p.embeddings))).size;
    bytes += (await fs.stat(path.join(outDir, p.metadata))).size;
  }
  process.stdout.write(
    `${JSON.stringify({
      rows: m.rows,
      seconds: (performance.now() - started) / 1000,
      cpuMs: (cpu.user + cpu.system) / 1000,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      bytes,
    })}\n`,
  );
}

function runChild(storeDir: string, outDir: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, "export", "--child", storeDir, "--out", outDir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.once("error", reject);
    proc.once("close", (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, number>)
        : reject(new Error(`export child exited ${code}`)),
    );
  });
}

if (values.child) {
  await child(values.child, values.out!);
} else {
  const shardSize = Number(values["shard-size"]);
  for (const size of values.sizes.split(",").map(Number)) {
    const storeDir = await tempDir("export-src");
    const outDir = await tempDir("export-out");
    try {
      await generate(new LocalStore(storeDir), size, shardSize);
      const r = await runChild(storeDir, outDir);
      process.stdout.write(
        `export ${size} images (${Math.ceil(size / shardSize)} shards of ${shardSize}, 2048-d f16 → f32): ` +
          `peak RSS ${r.peakRssMb!.toFixed(0)} MB, ${r.seconds!.toFixed(1)} s, ` +
          `${(r.rows! / r.seconds!).toFixed(0)} rows/s, ${((r.cpuMs! / r.rows!) * 1000).toFixed(0)} CPU ms per 1000 rows, ` +
          `${(r.bytes! / 2 ** 20).toFixed(0)} MiB written (${load()})\n`,
      );
    } finally {
      await fs.rm(storeDir, { recursive: true, force: true });
      await fs.rm(outDir, { recursive: true, force: true });
    }
  }
}
