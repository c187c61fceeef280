/**
 * Online captions: batch-1 decoding (CAPFLOW_CAPTION_MAX_BATCH=1) vs micro-batched (maxBatch 64,
 * maxWait 10 ms), through the real `captions` queue and a real caption worker in this process, with a
 * published model of the tutorial's size (vocab 1000, embed 200, units 256, maxLength 20; random
 * weights, built with createCaptionModel and published like the trainer does).
 *
 *   pnpm bench captions [--capacity-jobs 48] [--seconds 6] [--overload-seconds 2] [--max-depth <n>]
 *
 * The `image` job kind takes a stored image (imageKey), so every queue figure INCLUDES store read,
 * sharp decode and the InceptionV3 encode (ONNX Runtime, micro-batched by 8 in both configurations;
 * only the decoder's maxBatch differs). The decoder alone is measured too, on precomputed features,
 * through the same Captioner.decode micro-batcher without the queue ("decode-only").
 *
 * Phases, each on a fresh queue prefix:
 *  1. decode-only capacity, both configurations (K captions submitted at once).
 *  2. capacity through the queue: --capacity-jobs image jobs added at once, first active → last
 *     completed. The batch-1 figure is "1×" for the rest.
 *  3. offered load, open loop (jobs added at even intervals): 1× for --seconds, 10× for
 *     --overload-seconds, straight into the queue (no admission control); latency = finishedOn − timestamp.
 *  4. 10× through the API (buildApiServer + app.inject, image/jpeg bodies, each image distinct), with
 *     CAPFLOW_API_MAX_QUEUE_DEPTH = --max-depth (default: 2 s of micro-batched capacity): 429s counted,
 *     their latency, and the p99 of the accepted requests. At least 64 + 3 × depth requests are sent: the
 *     gate counts waiting jobs only, and the worker (concurrency 64) first takes 64 jobs active.
 * Random weights never emit <end>, so every caption runs the full 19 steps: decode cost is the upper
 * bound for this model size, in both configurations alike.
 */
import fs from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Job, Worker } from "bullmq";
import sharp from "sharp";
import {
  buildVocabulary,
  createCaptionModel,
  createQueue,
  createRedis,
  keys,
  loadEncoder,
  loadTf,
  LocalStore,
  preprocessImage,
  publishModel,
  type Encoder,
  type JobInput,
  type ObjectStore,
  type Tf,
  type TypedQueue,
} from "@capflow/common";
import { buildApiServer } from "@capflow/ingest";
import { Captioner } from "../../packages/caption-worker/src/captioner.ts";
import { createCaptionWorker } from "../../packages/caption-worker/src/jobs/caption.ts";
import { saveCheckpoint } from "../../packages/trainer/src/checkpoint/checkpoint-store.ts";
import { sha256 } from "../../packages/ingest/src/ingest/sharding.ts";
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
    "capacity-jobs": { type: "string", default: "48" },
    "decode-captions": { type: "string", default: "128" },
    seconds: { type: "string", default: "6" },
    "overload-seconds": { type: "string", default: "2" },
    "max-depth": { type: "string" },
  },
});
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
  worker: Worker;
  queue: TypedQueue<"captions">;
  prefix: string;
  close(): Promise<void>;
}

let rigCount = 0;
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
  const workerConn = createRedis(redisUrl, "worker");
  const producer = createRedis(redisUrl, "producer");
  const queue = createQueue("captions", { connection: producer, prefix });
  const worker = createCaptionWorker({
    captioner,
    store,
    connection: workerConn,
    prefix,
    log: silent,
    concurrency: 64,
    maxPixels: 50_000_000,
  });
  worker.on("completed", onDone);
  worker.on("failed", (job, err) => console.error(`caption job ${job?.id} failed: ${err.message}`));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    captioner.dispose();
    workerConn.disconnect();
    producer.disconnect();
  };
  cleanup.add(`rig ${prefix}`, close);
  return { captioner, worker, queue, prefix, close };
}

const imageJob = (key: string, id: string): JobInput<"captions"> => ({
  kind: "image",
  requestId: id,
  imageKey: key,
  model: "default",
  decode: { method: "greedy", beamWidth: 3 },
});

runBench(async (cleanup) => {
  console.log(
    `capflow captions benchmark: maxWait ${MAX_WAIT_MS} ms, worker concurrency 64, encoder micro-batch 8, ORT threads ${cores}; ${load()}`,
  );
  const redis = await startRedis(cleanup);
  const storeDir = await tempDir("captions-store");
  cleanup.add("store dir", () => fs.rm(storeDir, { recursive: true, force: true }));
  const store = new LocalStore(storeDir);
  const { tf, backend } = await loadTf();
  const encoder = await loadEncoder({ runtime: "onnx", threads: cores, logger: { info() {}, warn() {} } });
  cleanup.add("encoder", () => encoder.dispose());
  await publishBenchModel(store, tf, encoder.id);
  console.log(
    `model: vocab 1000, embed 200, units 256, maxLength 20 on tfjs ${backend}; encoder ${encoder.backend}`,
  );

  // ---- 1. decode-only, precomputed features ----
  const sample = await distinctImages(8);
  const feats: Float32Array[] = [];
  for (const b of sample) {
    const p = await preprocessImage(b);
    if (!p.ok) throw new Error(p.message);
    feats.push(await encoder.encode(p.pixels, 1));
  }
  // The model alone: greedyDecode of 1 row vs 64 rows (no batcher, no queue).
  {
    const captioner = new Captioner({ store, tf, log: silent, encoder, maxBatch: 1, maxWaitMs: MAX_WAIT_MS });
    const lease = await captioner.holder("default").acquire();
    try {
      const m = lease.loaded.model;
      const rows = new Float32Array(64 * encoder.dim);
      for (let i = 0; i < 64; i++) rows.set(feats[i % feats.length]!, i * encoder.dim);
      m.greedyDecode(rows, 64); // warm-up both shapes
      m.greedyDecode(rows.subarray(0, encoder.dim), 1);
      let t = performance.now();
      for (let i = 0; i < 16; i++) m.greedyDecode(rows.subarray(i * encoder.dim, (i + 1) * encoder.dim), 1);
      const one = (performance.now() - t) / 16;
      t = performance.now();
      m.greedyDecode(rows, 64);
      m.greedyDecode(rows, 64);
      const sixtyFour = (performance.now() - t) / 2;
      console.log(
        `  greedyDecode alone: 1 row ${ms(one)} (${(1000 / one).toFixed(0)} captions/s), 64 rows ${ms(sixtyFour)} (${((64 * 1000) / sixtyFour).toFixed(0)} captions/s): ×${((64 * one) / sixtyFour).toFixed(2)} at most from batching; ${load()}`,
      );
    } finally {
      lease.release();
      captioner.dispose();
    }
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

  // ---- images for the queue phases (reused across them: job ids, not images, are unique) ----
  const pool = await distinctImages(Math.max(capacityJobs, 400));
  const poolKeys: string[] = [];
  for (const b of pool) {
    const key = keys.image(sha256(b), "jpg");
    await store.putIfAbsent(key, b);
    poolKeys.push(key);
  }

  // ---- 2 & 3. through the queue ----
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
    rig.worker.on("active", () => (firstActive ??= performance.now()));
    await rig.worker.waitUntilReady();
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
      `  queue capacity ${cfg.name}: ${capacity[cfg.name]!.toFixed(1)} captions/s (${capacityJobs} jobs at once, encode included); ${load()}`,
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
  await rig.worker.waitUntilReady();
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
  // Fresh images: the API dedupes identical images into one job.
  // The gate counts waiting jobs only, and the worker holds up to its concurrency (64) jobs active:
  // offer at least enough requests to get past both.
  const apiRequests = Math.max(Math.ceil(oneX * 10 * seconds10x), 64 + 3 * maxDepth);
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

  const speedUp = capacity["micro-batched"]! / capacity["batch-1"]!;
  const decodeSpeedUp = decodeOnly["micro-batched"]! / decodeOnly["batch-1"]!;
  console.log(`\nresults (${load()}; queue figures include store read + decode + encode):`);
  console.log(`batch-1: ${capacity["batch-1"]!.toFixed(1)} captions/s`);
  console.log(`micro-batched: ${capacity["micro-batched"]!.toFixed(1)} captions/s`);
  console.log(`speed-up: ${speedUp.toFixed(2)}x`);
  console.log(`decode-only batch-1: ${decodeOnly["batch-1"]!.toFixed(1)} captions/s`);
  console.log(`decode-only micro-batched: ${decodeOnly["micro-batched"]!.toFixed(1)} captions/s`);
  console.log(`decode-only speed-up: ${decodeSpeedUp.toFixed(2)}x`);
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
