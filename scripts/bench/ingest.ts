/**
 * Ingest throughput: the same drawn images ingested into a LocalStore and into S3 (s3rver on
 * loopback), against the raw read + sha256 of the same files.
 *
 *   pnpm bench ingest [--images 128] [--shard-size 128] [--concurrency 16]
 *
 * - read+hash: readFile + sha256 of every image, --concurrency at a time (ingest's own window):
 *   the most ingest could do with a free store.
 * - local / s3: `ingestDataset` (jsonl-folder) into a fresh store, features jobs into a private
 *   redis-server: read, hash, head, putIfAbsent, manifest, shard lists and one job per shard.
 * - re-ingest: the same again into the same store (every image already there: heads only).
 * - s3 distributed (--workers N, default 3): `capflow ingest --distribute` as `ingestDistributed` here
 *   with N `capflow worker ingest` child processes (started before the clock), into a fresh S3 prefix:
 *   enumeration, ranges of --range-size records, parts, assembly and the same outputs.
 * Every figure carries the load average: the machine is shared, so compare ratios within one run.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { createQueue, createRedis, LocalStore, S3Store, type ObjectStore } from "@capflow/common";
import { ingestDataset, ingestDistributed } from "@capflow/ingest";
import {
  describeImages,
  drawPhotos,
  load,
  runBench,
  startRedis,
  startS3,
  tempDir,
  writeDataset,
} from "./_support.ts";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "128" },
    "shard-size": { type: "string", default: "128" },
    concurrency: { type: "string", default: "16" },
    workers: { type: "string", default: "3" },
    "range-size": { type: "string", default: "32" },
  },
});
const N = Number(values.images);
const shardSize = Number(values["shard-size"]);
const concurrency = Number(values.concurrency);
const workers = Number(values.workers);
const rangeSize = Number(values["range-size"]);
const ROOT = path.resolve(import.meta.dirname, "../..");

runBench(async (cleanup) => {
  console.log(`capflow ingest benchmark: shard size ${shardSize}, concurrency ${concurrency}; ${load()}`);
  const images = await drawPhotos(N, 2);
  const mib = images.reduce((s, i) => s + i.bytes.length, 0) / 2 ** 20;
  console.log(`${describeImages(images)}, ${mib.toFixed(1)} MiB in all`);
  const dir = await tempDir("ingest-dataset");
  cleanup.add("dataset dir", () => fs.rm(dir, { recursive: true, force: true }));
  await writeDataset(dir, images);

  const redis = await startRedis(cleanup);
  const producer = createRedis(redis.url, "producer");
  cleanup.add("producer", async () => producer.disconnect());

  const rate = (seconds: number) => `${(N / seconds).toFixed(1)} img/s (${(mib / seconds).toFixed(1)} MiB/s)`;

  // Baseline: read + hash, the same window of concurrent reads as ingest.
  const names = images.map((i) => path.join(dir, i.name));
  const t0 = performance.now();
  for (let i = 0; i < names.length; i += concurrency)
    await Promise.all(
      names.slice(i, i + concurrency).map(async (f) =>
        createHash("sha256")
          .update(await fs.readFile(f))
          .digest("hex"),
      ),
    );
  const hashSeconds = (performance.now() - t0) / 1000;
  console.log(`  read+hash: ${rate(hashSeconds)}; ${load()}`);

  let run = 0;
  const ingestInto = async (store: ObjectStore): Promise<number> => {
    const queue = createQueue("features", { connection: producer, prefix: `bench-${run++}` });
    try {
      const t = performance.now();
      const summary = await ingestDataset(store, queue, {
        dataset: "bench",
        format: "jsonl-folder",
        dir,
        shardSize,
        onError: "fail",
        concurrency,
      });
      const seconds = (performance.now() - t) / 1000;
      if (summary.images !== N) throw new Error(`ingested ${summary.images} of ${N} images`);
      return seconds;
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  };

  const localDir = await tempDir("ingest-store");
  cleanup.add("local store", () => fs.rm(localDir, { recursive: true, force: true }));
  const local = new LocalStore(localDir);
  const localSeconds = await ingestInto(local);
  console.log(`  local: ${rate(localSeconds)}; ${load()}`);
  const localAgain = await ingestInto(local);
  console.log(`  local re-ingest (all stored): ${rate(localAgain)}; ${load()}`);

  const s3 = await startS3(cleanup);
  // The S3 server's store under `prefix`: one for the in-process ingests, one for the workers'.
  const s3StoreAt = (prefix: string) =>
    new S3Store({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      prefix,
    });
  const s3Store = s3StoreAt("bench");
  cleanup.add("s3 store", () => s3Store.close());
  const s3Seconds = await ingestInto(s3Store);
  console.log(`  s3: ${rate(s3Seconds)}; ${load()}`);
  const s3Again = await ingestInto(s3Store);
  console.log(`  s3 re-ingest (all stored): ${rate(s3Again)}; ${load()}`);

  let distSeconds: number | undefined;
  if (workers > 0) {
    const env = {
      ...process.env,
      CAPFLOW_REDIS_URL: redis.url,
      CAPFLOW_QUEUE_PREFIX: "bench-dist",
      CAPFLOW_LOG_LEVEL: "warn",
      CAPFLOW_STORE: "s3",
      CAPFLOW_S3_BUCKET: s3.bucket,
      CAPFLOW_S3_ENDPOINT: s3.endpoint,
      CAPFLOW_S3_FORCE_PATH_STYLE: "true",
      CAPFLOW_S3_ACCESS_KEY_ID: "S3RVER",
      CAPFLOW_S3_SECRET_ACCESS_KEY: "S3RVER",
      CAPFLOW_S3_PREFIX: "bench-dist",
      CAPFLOW_INGEST_IMAGE_CONCURRENCY: String(concurrency),
    };
    const started = Array.from({ length: workers }, () => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", path.join(ROOT, "packages/cli/src/main.ts"), "worker", "ingest"],
        // Logs go to stderr: read there for the line that says the worker takes jobs.
        { cwd: ROOT, env: { ...env, CAPFLOW_LOG_LEVEL: "info" }, stdio: ["ignore", "ignore", "pipe"] },
      );
      cleanup.add(`ingest worker ${child.pid}`, async () => void child.kill("SIGTERM"));
      return new Promise<void>((resolve, reject) => {
        let out = "";
        child.stderr.on("data", (d: Buffer) => {
          if (out.length < 100_000) out += d.toString();
          if (out.includes("ops server")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`ingest worker exited ${code}`)));
      });
    });
    await Promise.all(started);
    const distStore = s3StoreAt("bench-dist");
    cleanup.add("s3 distributed store", () => distStore.close());
    const deps = {
      store: distStore,
      features: createQueue("features", { connection: producer, prefix: "bench-dist" }),
      ingest: createQueue("ingest", { connection: producer, prefix: "bench-dist" }),
      redis: producer,
      prefix: "bench-dist",
    };
    cleanup.add("distributed queues", async () => {
      for (const q of [deps.features, deps.ingest]) {
        await q.obliterate({ force: true });
        await q.close();
      }
    });
    const t = performance.now();
    const summary = await ingestDistributed(deps, {
      dataset: "bench",
      format: "jsonl-folder",
      dir,
      shardSize,
      onError: "fail",
      rangeSize,
      pollMs: 100,
    });
    distSeconds = (performance.now() - t) / 1000;
    if (summary.images !== N) throw new Error(`ingested ${summary.images} of ${N} images`);
    console.log(
      `  s3 distributed (${workers} worker processes, ${summary.ranges} ranges): ${rate(distSeconds)}; ${load()}`,
    );
  }

  console.log(`\nresults (${load()}):`);
  console.log(`read+hash: ${(N / hashSeconds).toFixed(1)} img/s`);
  console.log(`local: ${(N / localSeconds).toFixed(1)} img/s`);
  console.log(`s3: ${(N / s3Seconds).toFixed(1)} img/s`);
  console.log(`local/read+hash: ${(hashSeconds / localSeconds).toFixed(2)}`);
  console.log(`s3/read+hash: ${(hashSeconds / s3Seconds).toFixed(2)}`);
  if (distSeconds) console.log(`s3 distributed/s3: ${(s3Seconds / distSeconds).toFixed(2)}`);
});
