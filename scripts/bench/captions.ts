/**
 * Captions: batch-1 decoding (CAPFLOW_CAPTION_MAX_BATCH=1) vs micro-batched (maxBatch 64, maxWait
 * 10 ms), with the caption worker's real decoder (ONNX Runtime unless CAPFLOW_DECODER_RUNTIME=tfjs),
 * through the real queues and a real caption worker in this process, with a published model of the
 * tutorial's size (vocab 1000, embed 200, units 256, maxLength 20; random weights, built with
 * createCaptionModel and published like the trainer does).
 *
 *   pnpm bench captions [--bulk-shards 16] [--shard-size 256] [--capacity-jobs 48] [--seconds 6]
 *                       [--overload-seconds 2] [--max-depth <n>]
 *
 * Phases, each on a fresh queue prefix:
 *  1. decode-only: K captions submitted at once to Captioner.decode (no queue, no store).
 *  2. bulk through the `caption-bulk` queue: --bulk-shards shards of --shard-size stored feature rows
 *     (what a bulk job over an ingested dataset decodes: no image is encoded again), all enqueued at
 *     once; captions/s from the first shard taken to the last completed. This is the headline: the
 *     decoder is the work.
 *  3. online image jobs through the `captions` queue: capacity (--capacity-jobs at once), then open
 *     loop at 1× (batch-1 capacity) for --seconds and 10× for --overload-seconds, straight into the
 *     queue (no admission control); latency = finishedOn − timestamp. Each job reads a stored JPEG,
 *     decodes it with sharp and encodes it with InceptionV3 (micro-batched by 8 in both
 *     configurations), so these figures are bound by the encoder, not the caption decoder.
 *  4. 10× through the API (buildApiServer + app.inject, image/jpeg bodies, each image distinct), with
 *     CAPFLOW_API_MAX_QUEUE_DEPTH = --max-depth (default: 2 s of micro-batched capacity): 429s counted,
 *     their latency, and the p99 of the accepted requests.
 * Random weights never emit <end>, so every caption runs the full 19 steps: decode cost is the upper
 * bound for this model size, in both configurations alike.
 */
import fs from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import sharp from "sharp";
import {
  createQueue,
  createRedis,
  encodeNpy,
  keys,
  sha256,
  putJson,
  LocalStore,
  type JobInput,
  type ShardIndex,
  type ObjectStore,
  type TypedQueue,
} from "@capflow/common";
import {
  buildVocabulary,
  createCaptionModel,
  loadEncoder,
  loadTf,
  preprocessImage,
  publishModel,
  type Encoder,
  type Tf,
} from "@capflow/ml";
import { buildApiServer } from "@capflow/api";
import { Captioner, createCaptionWorkers } from "@capflow/caption-worker";
import { saveCheckpoint } from "@capflow/trainer";
import {
  cores,
  load,
  percentile,
  rng,
  runBench,
  silent,
  startRedis,
  tempDir,
  type Cleanup,
} from "./_support.ts";

const { values } = parseArgs({
  options: {
    "bulk-shards": { type: "string", default: "16" },
    "shard-size": { type: "string", default: "256" },
    "capacity-jobs": { type: "string", default: "48" },
    "decode-captions": { type: "string", default: "128" },
    seconds: { type: "string", default: "6" },
    "overload-seconds": { type: "string", default: "2" },
    "max-depth": { type: "string" },
  },
});
const bulkShards = Number(values["bulk-shards"]);
const shardSize = Number(values["shard-size"]);
const capacityJobs = Number(values["capacity-jobs"]);
const decodeCaptions = Number(values["decode-captions"]);
const seconds1x = Number(values.seconds);
const seconds10x = Number(values["overload-seconds"]);
const MAX_WAIT_MS = 10;
const CONFIGS = [
  { name: "batch-1", maxBatch: 1 },
  { name: "micro-batched", maxBatch: 64 },
] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** Publishes a tutorial-sized model with random weights as "default", the trainer's way. */
async function publishBenchModel(store: ObjectStore, tf: Tf, encoderId: string): Promise<void> {
  const words = Array.from({ length: 996 }, (_, i) => `w${i}`);
  const vocab = buildVocabulary([words], { minCount: 1 });
  const model = createCaptionModel(tf, {
    vocabSize: vocab.size,
    maxLength: 20,
    embedDim: 200,
    units: 256,
    seed: 3,
  });
  try {
    await saveCheckpoint(store, {
      runId: "bench",
      epoch: 1,
      weights: model.getWeights(),
      optimizer: await model.getOptimizerState(),
      vocab: vocab.toJSON(),
      config: { spec: {}, model: { ...model.config, pretrainedEmbeddings: undefined } },
      history: [],
    });
  } finally {
    model.dispose();
  }
  await publishModel(store, "default", { runId: "bench", epoch: 1, encoderId, cider: 0 });
}

/** `n` distinct JPEGs (~400×300, photo-like), cheap to make: a few bases with a varying pixel row. */
async function distinctImages(n: number): Promise<Buffer[]> {
  const W = 400;
  const H = 300;
  const bases = Array.from({ length: 8 }, (_, b) => {
    const rand = rng(b + 11);
    const raw = Buffer.alloc(W * H * 3);
    const f = 0.02 + rand() * 0.05;
    for (let i = 0; i < raw.length; i++)
      raw[i] =
        128 + 80 * Math.sin((i % (W * 3)) * f + Math.floor(i / (W * 3)) * f * 0.5 + b) + (rand() - 0.5) * 30;
    return raw;
  });
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const raw = Buffer.from(bases[i % bases.length]!);
    for (let k = 0; k < 24; k++) raw[k] = (i >> (k % 12)) & 1 ? 255 : 0; // unique top-left pixels
    out.push(
      await sharp(raw, { raw: { width: W, height: H, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer(),
    );
  }
  return out;
}

interface Rig {
  captioner: Captioner;
  workers: Worker[];
  queue: TypedQueue<"captions">;
  bulkQueue: TypedQueue<"caption-bulk">;
  prefix: string;
  close(): Promise<void>;
}

let rigCount = 0;
/** A caption worker as `capflow worker captions` runs one: online slots (64) and bulk slots (2). */
function startRig(
  cleanup: Cleanup,
  redisUrl: string,
  store: ObjectStore,
  tf: Tf,
  encoder: Encoder,
  maxBatch: number,
  onDone: (job: Job) => void,
): Rig {
  const prefix = `bench-${rigCount++}`;
  const captioner = new Captioner({ store, tf, log: silent, encoder, maxBatch, maxWaitMs: MAX_WAIT_MS });
  const conns: Redis[] = [];
  const producer = createRedis(redisUrl, "producer");
  const queue = createQueue("captions", { connection: producer, prefix });
  const bulkQueue = createQueue("caption-bulk", { connection: producer, prefix });
  const { online, bulk } = createCaptionWorkers({
    captioner,
    store,
    prefix,
    log: silent,
    connect: () => conns[conns.push(createRedis(redisUrl, "worker")) - 1]!,
    concurrency: 64,
    bulkConcurrency: 2,
    maxPixels: 50_000_000,
  });
  const workers = [online, bulk];
  for (const w of workers) {
    w.on("completed", onDone);
    w.on("failed", (job, err) => console.error(`caption job ${job?.id} failed: ${err.message}`));
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const w of workers) await w.close();
    for (const q of [queue, bulkQueue]) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    captioner.dispose();
    for (const c of conns) c.disconnect();
    producer.disconnect();
  };
  cleanup.add(`rig ${prefix}`, close);
  return { captioner, workers, queue, bulkQueue, prefix, close };
}

const imageJob = (key: string, id: string): JobInput<"captions"> => ({
  kind: "image",
  requestId: id,
  imageKey: key,
  model: "default",
  decode: { method: "greedy", beamWidth: 3 },
});

/**
 * A dataset's feature shards as the feature workers leave them (matrix + index), built from a few real
 * encoded vectors with a small per-row perturbation so no two rows are equal.
 */
async function writeBulkDataset(
  store: ObjectStore,
  encoder: Encoder,
  feats: Float32Array[],
): Promise<{ dataset: string; shards: string[] }> {
  const dataset = "bench-bulk";
  const shards: string[] = [];
  for (let s = 0; s < bulkShards; s++) {
    const shardId = `s${String(s).padStart(4, "0")}`;
    const ids = Array.from({ length: shardSize }, (_, i) => `${shardId}-${i}`);
    const vectors = new Float32Array(shardSize * encoder.dim);
    for (let i = 0; i < shardSize; i++) {
      const base = feats[(s * shardSize + i) % feats.length]!;
      for (let d = 0; d < encoder.dim; d++)
        vectors[i * encoder.dim + d] = base[d]! * (1 + 0.05 * Math.sin(i * 7.1 + d * 0.37 + s));
    }
    const index: ShardIndex = {
      encoderId: encoder.id,
      dataset,
      shardId,
      dtype: "float16",
      dim: encoder.dim,
      ids,
      failures: [],
    };
    await store.put(
      keys.featureMatrix(encoder.id, dataset, shardId),
      encodeNpy(vectors, shardSize, encoder.dim, "float16"),
    );
    await putJson(store, keys.featureIndex(encoder.id, dataset, shardId), index);
    await putJson(store, keys.shardList(dataset, shardId), {
      dataset,
      shardId,
      images: ids.map((id) => ({ id, key: `images/${id}.jpg` })),
    });
    shards.push(shardId);
  }
  return { dataset, shards };
}

runBench(async (cleanup) => {
  console.log(
    `capflow captions benchmark: maxWait ${MAX_WAIT_MS} ms, worker concurrency 64 online + 2 bulk, encoder micro-batch 8, ORT threads ${cores}; ${load()}`,
  );
  const redis = await startRedis(cleanup);
  const storeDir = await tempDir("captions-store");
  cleanup.add("store dir", () => fs.rm(storeDir, { recursive: true, force: true }));
  const store = new LocalStore(storeDir);
  const { tf, backend } = await loadTf();
  const encoder = await loadEncoder({ runtime: "onnx", threads: cores, logger: { info() {}, warn() {} } });
  cleanup.add("encoder", () => encoder.dispose());
  await publishBenchModel(store, tf, encoder.id);

  // ---- 1. decode-only, precomputed features ----
  const sample = await distinctImages(8);
  const feats: Float32Array[] = [];
  for (const b of sample) {
    const p = await preprocessImage(b);
    if (!p.ok) throw new Error(p.message);
    feats.push(await encoder.encode(p.pixels, 1));
  }
  const decodeOnly: Record<string, number> = {};
  for (const cfg of CONFIGS) {
    const captioner = new Captioner({
      store,
      tf,
      log: silent,
      encoder,
      maxBatch: cfg.maxBatch,
      maxWaitMs: MAX_WAIT_MS,
    });
    const lease = await captioner.holder("default").acquire();
    try {
      if (cfg === CONFIGS[0])
        console.log(
          `model: vocab 1000, embed 200, units 256, maxLength 20; decoder ${lease.loaded.decoder.runtime} (${lease.loaded.decoder.backend}), tfjs ${backend}; encoder ${encoder.backend}`,
        );
      const req = { method: "greedy" as const, beamWidth: 3 };
      await captioner.decode(lease.loaded, feats[0]!, 1, req); // warm-up
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: decodeCaptions }, (_, i) =>
          captioner.decode(lease.loaded, feats[i % feats.length]!, 1, req),
        ),
      );
      decodeOnly[cfg.name] = decodeCaptions / ((performance.now() - t0) / 1000);
    } finally {
      lease.release();
      captioner.dispose();
    }
    console.log(
      `  decode-only ${cfg.name}: ${decodeOnly[cfg.name]!.toFixed(1)} captions/s (${decodeCaptions} at once); ${load()}`,
    );
  }

  // ---- 2. bulk shards through the caption-bulk queue ----
  const bulkData = await writeBulkDataset(store, encoder, feats);
  const bulk: Record<string, number> = {};
  for (const cfg of CONFIGS) {
    let firstActive: number | undefined;
    let lastDone = 0;
    const done = new Set<string>();
    const rig = startRig(cleanup, redis.url, store, tf, encoder, cfg.maxBatch, (job) => {
      lastDone = performance.now();
      done.add(job.id!);
    });
    rig.workers[1]!.on("active", () => (firstActive ??= performance.now()));
    await Promise.all(rig.workers.map((w) => w.waitUntilReady()));
    const shardJob = (shardId: string, batchId: string) => ({
      name: "bulk-shard",
      data: {
        kind: "bulk-shard" as const,
        batchId,
        dataset: bulkData.dataset,
        shardId,
        shardKey: keys.shardList(bulkData.dataset, shardId),
      },
      opts: { jobId: `${batchId}.${shardId}` },
    });
    // warm-up: model load, decoder sessions, first batch shapes
    await rig.bulkQueue.addBulk([shardJob(bulkData.shards[0]!, "warm")]);
    while (!done.has(`warm.${bulkData.shards[0]!}`)) await sleep(20);
    firstActive = undefined;
    const jobs = bulkData.shards.map((id) => shardJob(id, "bulk"));
    await rig.bulkQueue.addBulk(jobs);
    while (!jobs.every((j) => done.has(j.opts.jobId))) await sleep(20);
    bulk[cfg.name] = (bulkShards * shardSize) / ((lastDone - firstActive!) / 1000);
    console.log(
      `  bulk ${cfg.name}: ${bulk[cfg.name]!.toFixed(1)} captions/s (${bulkShards} shards × ${shardSize} stored features, 2 shards at a time, store read + decode + results write); ${load()}`,
    );
    await rig.close();
  }

  // ---- images for the online phases (reused across them: job ids, not images, are unique) ----
  const pool = await distinctImages(Math.max(capacityJobs, 400));
  const poolKeys: string[] = [];
  for (const b of pool) {
    const key = keys.image(sha256(b), "jpg");
    await store.putIfAbsent(key, b);
    poolKeys.push(key);
  }

  // ---- 3. online image jobs through the captions queue ----
  const capacity: Record<string, number> = {};
  const lat: Record<string, { p50: number; p99: number; rate: number; n: number }> = {};
  let oneX = 0;
  for (const cfg of CONFIGS) {
    const done = new Map<string, number>(); // job id → latency ms
    let lastDone = 0;
    let firstActive: number | undefined;
    const rig = startRig(cleanup, redis.url, store, tf, encoder, cfg.maxBatch, (job) => {
      lastDone = performance.now();
      done.set(job.id!, (job.finishedOn ?? Date.now()) - job.timestamp);
    });
    rig.workers[0]!.on("active", () => (firstActive ??= performance.now()));
    await Promise.all(rig.workers.map((w) => w.waitUntilReady()));
    const waitFor = async (ids: string[]) => {
      while (!ids.every((id) => done.has(id))) await sleep(20);
    };
    // warm-up: model load, first batch shapes
    await rig.queue.add("image", imageJob(poolKeys[0]!, "warm"), { jobId: "warm" });
    await waitFor(["warm"]);

    // capacity
    firstActive = undefined;
    const ids = Array.from({ length: capacityJobs }, (_, i) => `cap-${i}`);
    await rig.queue.addBulk(
      ids.map((id, i) => ({
        name: "image",
        data: imageJob(poolKeys[i % poolKeys.length]!, id),
        opts: { jobId: id },
      })),
    );
    await waitFor(ids);
    capacity[cfg.name] = capacityJobs / ((lastDone - firstActive!) / 1000);
    if (cfg.name === "batch-1") oneX = capacity[cfg.name]!;
    console.log(
      `  online capacity ${cfg.name}: ${capacity[cfg.name]!.toFixed(1)} captions/s (${capacityJobs} image jobs at once, encode included); ${load()}`,
    );

    // offered load, open loop
    for (const [label, mult, secs] of [
      ["1x", 1, seconds1x],
      ["10x", 10, seconds10x],
    ] as const) {
      const rate = oneX * mult;
      const n = Math.max(1, Math.round(rate * secs));
      const phaseIds: string[] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        const id = `${label}-${i}`;
        phaseIds.push(id);
        void rig.queue.add("image", imageJob(poolKeys[i % poolKeys.length]!, id), { jobId: id });
      }
      await waitFor(phaseIds);
      const took = (lastDone - t0) / 1000;
      const l = phaseIds.map((id) => done.get(id)!).sort((a, b) => a - b);
      lat[`${cfg.name} ${label}`] = { p50: percentile(l, 50), p99: percentile(l, 99), rate: n / took, n };
      console.log(
        `  ${cfg.name} at ${label} (${rate.toFixed(1)} req/s offered for ${secs} s, ${n} jobs): p50 ${ms(percentile(l, 50))}, p99 ${ms(percentile(l, 99))}, served ${(n / took).toFixed(1)} captions/s; ${load()}`,
      );
    }
    await rig.close();
  }

  // ---- 4. 10× through the API with admission control ----
  const microCap = capacity["micro-batched"]!;
  const maxDepth = values["max-depth"] ? Number(values["max-depth"]) : Math.max(4, Math.ceil(2 * microCap));
  const rig = startRig(cleanup, redis.url, store, tf, encoder, 64, () => undefined);
  await Promise.all(rig.workers.map((w) => w.waitUntilReady()));
  const apiConn = createRedis(redis.url, "producer");
  cleanup.add("api connection", async () => apiConn.disconnect());
  const app = await buildApiServer({
    store,
    redis: apiConn,
    prefix: rig.prefix,
    log: silent,
    config: {
      maxBodyBytes: 20 * 1024 * 1024,
      waitMs: 120_000,
      maxQueueDepth: maxDepth,
      urlFetch: { maxBytes: 1024, timeoutMs: 1000, allowPrivate: false },
    },
  });
  cleanup.add("api", () => app.close());
  await app.ready();
  // Fresh images: the API dedupes identical images into one job. Offer at least 3 depths' worth.
  const apiRequests = Math.max(Math.ceil(oneX * 10 * seconds10x), 3 * maxDepth);
  const apiImages = await distinctImages(apiRequests + 1);
  const warm = await app.inject({
    method: "POST",
    url: "/v1/captions",
    payload: apiImages.pop()!,
    headers: { "content-type": "image/jpeg" },
  });
  if (warm.statusCode !== 200) throw new Error(`API warm-up answered ${warm.statusCode}: ${warm.body}`);
  const rate = oneX * 10;
  const results: Array<{ status: number; ms: number; at: number }> = [];
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < apiImages.length; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const started = performance.now();
    inflight.push(
      app
        .inject({
          method: "POST",
          url: "/v1/captions",
          payload: apiImages[i]!,
          headers: { "content-type": "image/jpeg" },
        })
        .then(
          (r) =>
            void results.push({ status: r.statusCode, ms: performance.now() - started, at: started - t0 }),
        ),
    );
  }
  await Promise.all(inflight);
  const ok = results
    .filter((r) => r.status === 200)
    .map((r) => r.ms)
    .sort((a, b) => a - b);
  const refused = results.filter((r) => r.status === 429);
  const refusedMs = refused.map((r) => r.ms).sort((a, b) => a - b);
  const other = results.filter((r) => r.status !== 200 && r.status !== 429);
  const firstRefusal = refused.length ? Math.min(...refused.map((r) => r.at)) : NaN;
  console.log(
    `  API at 10x (${rate.toFixed(1)} req/s offered for ${(results.length / rate).toFixed(1)} s, ${results.length} requests, max queue depth ${maxDepth}, worker concurrency 64): ${ok.length} answered 200 (p50 ${ms(percentile(ok, 50))}, p99 ${ms(percentile(ok, 99))}), ${refused.length} refused 429 (p50 ${ms(percentile(refusedMs, 50))}, p99 ${ms(percentile(refusedMs, 99))}, first after ${ms(firstRefusal)}), ${other.length} other; ${load()}`,
  );
  await rig.close();

  const speedUp = bulk["micro-batched"]! / bulk["batch-1"]!;
  const decodeSpeedUp = decodeOnly["micro-batched"]! / decodeOnly["batch-1"]!;
  const onlineSpeedUp = capacity["micro-batched"]! / capacity["batch-1"]!;
  console.log(`\nresults (${load()}):`);
  console.log(`batch-1: ${bulk["batch-1"]!.toFixed(1)} captions/s (bulk shards through the queue)`);
  console.log(
    `micro-batched: ${bulk["micro-batched"]!.toFixed(1)} captions/s (bulk shards through the queue)`,
  );
  console.log(`speed-up: ${speedUp.toFixed(2)}x`);
  console.log(`decode-only batch-1: ${decodeOnly["batch-1"]!.toFixed(1)} captions/s`);
  console.log(`decode-only micro-batched: ${decodeOnly["micro-batched"]!.toFixed(1)} captions/s`);
  console.log(`decode-only speed-up: ${decodeSpeedUp.toFixed(2)}x`);
  console.log(
    `online image jobs (encode included) batch-1: ${capacity["batch-1"]!.toFixed(1)}, micro-batched: ${capacity["micro-batched"]!.toFixed(1)} captions/s (${onlineSpeedUp.toFixed(2)}x; bound by the encoder)`,
  );
  for (const [k, v] of Object.entries(lat))
    console.log(
      `latency ${k}: p50 ${ms(v.p50)}, p99 ${ms(v.p99)} (${v.n} jobs, served ${v.rate.toFixed(1)} captions/s)`,
    );
  console.log(
    `10x via API: accepted p99 ${ms(percentile(ok, 99))} (${ok.length}), refused ${refused.length} with 429 in p50 ${ms(percentile(refusedMs, 50))} / p99 ${ms(percentile(refusedMs, 99))}, first refusal ${ms(firstRefusal)} into the overload (max depth ${maxDepth})`,
  );
  console.log(
    `goal micro-batched ≥ 5x batch-1: ${speedUp >= 5 ? "met" : "MISSED"} through the queue (${speedUp.toFixed(2)}x), ${decodeSpeedUp >= 5 ? "met" : "MISSED"} decode-only (${decodeSpeedUp.toFixed(2)}x)`,
  );
});
