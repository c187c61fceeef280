import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createQueue,
  createRedis,
  ingestRangeJobId,
  keys,
  S3Store,
  type ObjectStore,
  type TypedQueue,
} from "@capflow/common";
import { ingestDataset, type DistributedIngestSummary, type IngestSummary } from "@capflow/ingest";
import { runCapflow } from "../../../test/support/capflow-cli.ts";
import { CapflowProcess, sleep } from "../../../test/support/fault/process-control.ts";
import { drawImage } from "../../../test/support/images.ts";
import {
  freshPrefix,
  localStore,
  redisUrl,
  s3Env,
  s3StoreOptions,
  tempDir,
} from "../../../test/support/services.ts";

// `capflow ingest --distribute`: the same dataset ingested by one process, and as ranges worked by
// 3 `capflow worker ingest` processes on the S3-protocol store. The outputs must be the same bytes.
const RECORDS = 100;
const RANGE_SIZE = 16; // 7 ranges
const SHARD_SIZE = 8; // shards straddle range boundaries

/**
 * A Flickr8k captions.txt dataset of drawn images with what a real one has: files whose content
 * repeats (within a range and across ranges, first copy early or late), and a line whose image is
 * missing. Returns the folder.
 */
async function writeDataset(): Promise<string> {
  const dir = await tempDir("dist-ingest");
  await fs.mkdir(path.join(dir, "Images"));
  const lines = ["image,caption"];
  // Record → the record whose image it repeats: within a range (62), across ranges (21, 95, 99).
  const copies: Record<number, number> = { 21: 3, 62: 60, 95: 70, 99: 3 };
  for (let i = 0; i < RECORDS; i++) {
    const seed = copies[i] ?? i;
    const format = seed % 3 ? "png" : "jpeg";
    const name = `${String(i).padStart(4, "0")}.${format === "png" ? "png" : "jpg"}`;
    await fs.writeFile(path.join(dir, "Images", name), await drawImage(seed, format, 48));
    lines.push(`${name},a drawing number ${i} .`, `${name},shapes on a coloured background .`);
    if (i === 40) lines.push("not-there.jpg,an image that is missing .");
  }
  await fs.writeFile(path.join(dir, "captions.txt"), `${lines.join("\n")}\n`);
  return dir;
}

/** Key → sha256 of the bytes, for every object under a prefix. */
async function snapshot(store: ObjectStore, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const { key } of store.list(prefix))
    out.set(
      key,
      createHash("sha256")
        .update(await store.get(key))
        .digest("hex"),
    );
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

async function featureJobs(queue: TypedQueue<"features">): Promise<Array<[string, unknown]>> {
  const jobs = await queue.getJobs(["waiting", "prioritized", "delayed"]);
  return jobs.map((j) => [j.id!, j.data] as [string, unknown]).sort(([a], [b]) => a.localeCompare(b));
}

const comparable = (s: IngestSummary) => ({
  images: s.images,
  captions: s.captions,
  duplicates: s.duplicates,
  issues: s.issues,
  shards: s.shards,
  shardsEnqueued: s.shardsEnqueued,
  splits: s.splits,
  splitSource: s.splitSource,
});

describe("capflow ingest --distribute with 3 ingest worker processes", () => {
  const conn = createRedis(redisUrl(), "producer");
  const queues: Array<Pick<TypedQueue<"ingest">, "obliterate" | "close">> = [];
  const workers: CapflowProcess[] = [];
  let dir: string;
  let single: { store: ObjectStore; summary: IngestSummary; queue: TypedQueue<"features"> };

  const queueOf = <Q extends "features" | "ingest">(name: Q, prefix: string): TypedQueue<Q> => {
    const q = createQueue(name, { connection: conn, prefix });
    queues.push({ obliterate: (o) => q.obliterate(o), close: () => q.close() });
    return q;
  };

  /** Ingest in this process (the reference), once per file. */
  async function reference() {
    if (single) return single;
    dir = await writeDataset();
    const store = await localStore();
    const queue = queueOf("features", freshPrefix());
    const summary = await ingestDataset(store, queue, {
      dataset: "drawn",
      format: "flickr8k-csv",
      dir,
      shardSize: SHARD_SIZE,
      onError: "skip",
    });
    single = { store, summary, queue };
    return single;
  }

  function distributedEnv() {
    const s3 = s3StoreOptions();
    const env = {
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: freshPrefix(),
      CAPFLOW_LOG_LEVEL: "info",
      ...s3Env(s3),
      // A killed worker's range is redone within seconds, not BullMQ's default minute.
      CAPFLOW_INGEST_LOCK_SECONDS: "2",
      CAPFLOW_INGEST_STALLED_INTERVAL_SECONDS: "1",
    };
    return { env, store: new S3Store(s3) };
  }

  const startWorker = (env: Record<string, string>, label: string, extra: Record<string, string> = {}) => {
    const w = new CapflowProcess(["worker", "ingest"], { ...env, ...extra }, label).start();
    workers.push(w);
    return w;
  };

  const ingestArgs = () => [
    "ingest",
    dir,
    "--distribute",
    "--dataset",
    "drawn",
    "--format",
    "flickr8k-csv",
    "--shard-size",
    String(SHARD_SIZE),
    "--range-size",
    String(RANGE_SIZE),
    "--json",
  ];

  /** Everything a one-process ingest leaves, compared with what the distributed one left. */
  async function expectSameOutputs(store: ObjectStore, queue: TypedQueue<"features">) {
    const ref = await reference();
    const manifest = keys.manifest("drawn");
    expect((await store.get(manifest)).toString()).toBe((await ref.store.get(manifest)).toString());
    const info = keys.datasetInfo("drawn");
    expect((await store.get(info)).toString()).toBe((await ref.store.get(info)).toString());
    const shards = await snapshot(store, "datasets/drawn/shards/");
    expect(shards.size).toBe(ref.summary.shards);
    expect(shards).toEqual(await snapshot(ref.store, "datasets/drawn/shards/"));
    // Each content once, with the same bytes: no duplicate or partial image objects.
    const images = await snapshot(store, "images/");
    expect(images.size).toBe(ref.summary.images);
    expect(images).toEqual(await snapshot(ref.store, "images/"));
    expect(await featureJobs(queue)).toEqual(await featureJobs(ref.queue));
    // The run's parts are gone once assembled.
    expect(await snapshot(store, "ingest/")).toEqual(new Map());
  }

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.terminate()));
  });
  afterAll(async () => {
    for (const q of queues) {
      await q.obliterate({ force: true });
      await q.close();
    }
    conn.disconnect();
  });

  it("writes the same manifest, shard lists, images and feature jobs as one process, and again as a no-op", async () => {
    const ref = await reference();
    expect(ref.summary).toMatchObject({
      images: RECORDS - 4,
      duplicates: 4,
      issues: { "missing-image": 1 },
      shards: Math.ceil((RECORDS - 4) / SHARD_SIZE),
    });

    const { env, store } = distributedEnv();
    const three = [1, 2, 3].map((n) => startWorker(env, `ingest worker ${n}`));
    await Promise.all(three.map((w) => w.waitReady()));
    const ran = await runCapflow(ingestArgs(), env);
    expect(ran.code, ran.stderr).toBe(0);
    const summary = JSON.parse(ran.stdout) as DistributedIngestSummary;
    expect(comparable(summary)).toEqual(comparable(ref.summary));
    // The missing image's line is a record too: ranges count what the reader yields before any
    // image is looked at, and the worker of its range reports it.
    expect(summary.ranges).toBe(Math.ceil((RECORDS + 1) / RANGE_SIZE));

    const prefix = env.CAPFLOW_QUEUE_PREFIX;
    const features = queueOf("features", prefix);
    await expectSameOutputs(store, features);

    // The ranges really were split: each was taken by one of the worker processes, more than one took some.
    const ingest = queueOf("ingest", prefix);
    const takenBy = await Promise.all(
      Array.from({ length: summary.ranges }, async (_, r) => {
        const job = await ingest.getJob(ingestRangeJobId(summary.runId, r));
        return job?.processedBy?.split(":").pop();
      }),
    );
    const pids = new Set(three.map((w) => String(w.pid)));
    expect(
      takenBy.every((pid) => pid !== undefined && pids.has(pid)),
      takenBy.join(","),
    ).toBe(true);
    expect(new Set(takenBy).size, takenBy.join(",")).toBeGreaterThan(1);
    // Each range was read from where its first record starts in captions.txt (a line start, that line's
    // number), not from the file's beginning.
    const captions = await fs.readFile(path.join(dir, "captions.txt"));
    for (let r = 0; r < summary.ranges; r++) {
      const { from } = (await ingest.getJob(ingestRangeJobId(summary.runId, r)))!.data as {
        from?: { byte: number; line: number };
      };
      expect(from, `range ${r}`).toBeDefined();
      expect(captions[from!.byte - 1]).toBe(0x0a);
      expect(captions.subarray(0, from!.byte).toString().split("\n").length).toBe(from!.line);
    }
    // Claims are deleted with the run.
    expect(await conn.keys(`${prefix}:ingest-seen:*`)).toEqual([]);

    // The same command again: same run, nothing new stored or enqueued, same outputs.
    const again = await runCapflow(ingestArgs(), env);
    expect(again.code, again.stderr).toBe(0);
    const second = JSON.parse(again.stdout) as DistributedIngestSummary;
    expect(second).toMatchObject({
      runId: summary.runId,
      shardsEnqueued: 0,
      shardsAlreadyQueued: summary.shards,
    });
    await expectSameOutputs(store, features);

    // --on-error fail refuses the missing image, as a one-process ingest does, naming it.
    const strict = await runCapflow([...ingestArgs(), "--on-error", "fail"], env);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain("not-there.jpg");
  });

  it("completes with the same outputs when a worker is killed in the middle of a range", async () => {
    const { env, store } = distributedEnv();
    const prefix = env.CAPFLOW_QUEUE_PREFIX;
    const ingest = queueOf("ingest", prefix);
    // Alone and one image at a time, the first worker is sure to hold a range when it is killed.
    const doomed = startWorker(env, "ingest worker (killed)", { CAPFLOW_INGEST_IMAGE_CONCURRENCY: "1" });
    await doomed.waitReady();
    await reference();
    const command = runCapflow(ingestArgs(), env);
    let held: { id: string; partKey: string } | undefined;
    while (!held) {
      const [job] = await ingest.getJobs(["active"]);
      if (job?.processedBy?.endsWith(`:${doomed.pid}`)) {
        await doomed.kill();
        const { runId, range } = job.data as { runId: string; range: number };
        held = { id: job.id!, partKey: keys.ingestPart(runId, range) };
      } else await sleep(10);
    }
    // Killed before the range's part was written: the range was really cut short.
    expect(await store.head(held.partKey)).toBeUndefined();
    const rest = [2, 3].map((n) => startWorker(env, `ingest worker ${n}`));
    await Promise.all(rest.map((w) => w.waitReady()));

    const ran = await command;
    expect(ran.code, ran.stderr).toBe(0);
    await expectSameOutputs(store, queueOf("features", prefix));
    // The killed range was finished by one of the others.
    const redone = await ingest.getJob(held.id);
    expect(redone?.processedBy?.split(":").pop()).toMatch(
      new RegExp(`^(${rest.map((w) => w.pid).join("|")})$`),
    );
  });
});
