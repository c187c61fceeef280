/**
 * Feature extraction, end to end against its baselines, in one run on the same drawn images.
 *
 *   pnpm bench features [--images 64] [--batch 8] [--shard-size 32] [--tfjs-images 8]
 *                       [--one-images 16] [--no-tfjs] [--no-diagnose] [--no-int8]
 *
 * - bare-ort: InceptionV3 on ONNX Runtime alone (intra-op threads = cores), batches of --batch over the
 *   images already decoded to 299×299 tensors: no decode, no store, no queue.
 * - end-to-end: the images ingested into a LocalStore (features jobs in a private redis-server), then one
 *   real feature worker (`createFeatureWorker`, batch --batch, concurrency 1) in this process, timed from
 *   the first job active to the last completed: store reads, sharp decode, encode, shard writes.
 * - tfjs-wasm: the same batches on tfjs-backend-wasm (only --tfjs-images: ~0.5 s per image).
 * - one-at-a-time: the tutorial's method: read one file, decode it, encode it alone (batch 1).
 * - bare-ort-int8, end-to-end-int8 (unless --no-int8): the same two measurements with the int8 encoder
 *   (CAPFLOW_ENCODER_PRECISION=int8; built and gated on first use, then cached), in the same rounds as
 *   fp32, plus cosine(int8, fp32) on the drawn images.
 * - fp32 limit: an FMA-peak probe (./_fma-peak.ts) on all cores, at the start and the end of the run,
 *   ÷ 11.42 GFLOP per InceptionV3 image: the most img/s any fp32 implementation could reach.
 * - diagnosis (unless --no-diagnose): where the end-to-end time goes: decode alone (img/s and CPU s/img),
 *   `extractShard` with its encoder time per batch compared with bare ORT's, and the CPU bound
 *   cores / (decode CPU + encode CPU) per image.
 *
 * Thread knobs, read at start: UV_THREADPOOL_SIZE (libuv pool, sharp's decodes; default 4) and
 * CAPFLOW_BENCH_SHARP_CONCURRENCY (sharp.concurrency(): libvips threads per image; default = cores).
 * Every figure carries the load average: the machine is shared, so compare ratios within one run.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import {
  createQueue,
  createRedis,
  LocalStore,
  readDatasetInfo,
  getJson,
  keys,
  type ShardList,
} from "@capflow/common";
import { loadEncoder, preprocessImage, rowCosines, summariseCosines, type Encoder } from "@capflow/ml";
import { ingestDataset } from "@capflow/ingest";
import { createFeatureWorker, extractShard } from "@capflow/feature-worker";
import { cpuSecondsPerImage, throughput } from "./features-bare.ts";
import { fmaPeak, type FmaPeak } from "./_fma-peak.ts";
import {
  cores,
  describeImages,
  drawPhotos,
  load,
  runBench,
  silent,
  startRedis,
  tempDir,
  writeDataset,
  type Cleanup,
} from "./_support.ts";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "64" },
    batch: { type: "string", default: "8" },
    "shard-size": { type: "string", default: "32" },
    "tfjs-images": { type: "string", default: "8" },
    "one-images": { type: "string", default: "16" },
    "no-tfjs": { type: "boolean", default: false },
    "no-diagnose": { type: "boolean", default: false },
    "no-int8": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
  },
});
const N = Number(values.images);
const batch = Number(values.batch);
const shardSize = Number(values["shard-size"]);
const sharpConcurrency = process.env.CAPFLOW_BENCH_SHARP_CONCURRENCY;
if (sharpConcurrency) sharp.concurrency(Number(sharpConcurrency));

const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

/** Decodes every image the way the worker does (a batch's worth concurrently); img/s and CPU s/img. */
async function decodeAll(bytes: Buffer[]): Promise<{ tensors: Float32Array[]; rate: number; cpu: number }> {
  const tensors: Float32Array[] = [];
  const t0 = performance.now();
  const c0 = cpuNow();
  for (let i = 0; i < bytes.length; i += batch) {
    const out = await Promise.all(bytes.slice(i, i + batch).map((b) => preprocessImage(b)));
    for (const r of out) {
      if (!r.ok) throw new Error(`drawn image failed to decode: ${r.reason} ${r.message}`);
      tensors.push(r.pixels);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { tensors, rate: bytes.length / seconds, cpu: (cpuNow() - c0) / bytes.length };
}

/** The few onnxruntime-node calls used below (the package's types are not visible from the root). */
interface OrtTensor {
  data: unknown;
  dispose(): void;
}
interface OrtLike {
  Tensor: new (type: "float32", data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: {
    create(
      file: string,
      opts: Record<string, unknown>,
    ): Promise<{
      run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
      release(): Promise<void>;
    }>;
  };
}

/**
 * The same cached ONNX model in a session of our own with ORT's intra-op spin-waiting off
 * (`session.intra_op.allow_spinning=0`), to test whether spinning ORT threads fight sharp's decode
 * threads for the cores. Otherwise the options of packages/ml/src/encoder/onnx-encoder.ts.
 */
async function noSpinEncoder(like: Encoder): Promise<Encoder> {
  // onnxruntime-node is common's dependency, not the root's: resolve it from there.
  const ort = createRequire(path.join(import.meta.dirname, "../../packages/common/package.json"))(
    "onnxruntime-node",
  ) as OrtLike;
  const cacheDir = process.env.CAPFLOW_ENCODER_CACHE ?? path.join(homedir(), ".cache", "capflow", "encoders");
  const session = await ort.InferenceSession.create(path.join(cacheDir, `${like.id}.onnx`), {
    intraOpNumThreads: cores,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  });
  const enc: Encoder = {
    ...like,
    backend: `${like.backend} (no spinning)`,
    encode: async (batch, n) => {
      const input = new ort.Tensor("float32", batch, [n, 299, 299, 3]);
      const out = await session.run({ input });
      const data = (out.features!.data as Float32Array).slice();
      out.features!.dispose();
      input.dispose();
      return data;
    },
    dispose: () => session.release(),
  };
  await enc.encode(new Float32Array(299 * 299 * 3), 1);
  return enc;
}

interface Services {
  store: LocalStore;
  redisUrl: string;
  queue: ReturnType<typeof createQueue<"features">>;
}

async function startServices(cleanup: Cleanup): Promise<Services> {
  const redis = await startRedis(cleanup);
  const storeDir = await tempDir("store");
  cleanup.add("store dir", () => fs.rm(storeDir, { recursive: true, force: true }));
  const producer = createRedis(redis.url, "producer");
  cleanup.add("producer", async () => producer.disconnect());
  const queue = createQueue("features", { connection: producer, prefix: "bench" });
  cleanup.add("queue", () => queue.close());
  return { store: new LocalStore(storeDir), redisUrl: redis.url, queue };
}

/**
 * Ingests the images as dataset `name` (not timed), then runs one real feature worker over its
 * shards, timed from the first job active to the last completed.
 */
async function endToEnd(
  svc: Services,
  encoder: Encoder,
  datasetDir: string,
  name: string,
): Promise<{ rate: number; cpu: number; shards: ShardList[]; seconds: number }> {
  const { store, queue } = svc;
  const summary = await ingestDataset(store, queue, {
    dataset: name,
    format: "jsonl-folder",
    dir: datasetDir,
    shardSize,
    onError: "fail",
  });
  if (summary.shardsEnqueued !== summary.shards)
    throw new Error(`only ${summary.shardsEnqueued} shards enqueued`);
  const info = await readDatasetInfo(store, name);
  const shards = await Promise.all(
    info.shards.map((id) => getJson<ShardList>(store, keys.shardList(name, id))),
  );

  const workerConn = createRedis(svc.redisUrl, "worker");
  let first: number | undefined;
  let last = 0;
  let c0 = 0;
  let completed = 0;
  const worker = createFeatureWorker({
    store,
    encoder,
    connection: workerConn,
    prefix: "bench",
    log: silent,
    batchSize: batch,
    concurrency: 1,
    dtype: "float32",
    maxPixels: 50_000_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.on("active", () => {
        if (first === undefined) {
          first = performance.now();
          c0 = cpuNow();
        }
      });
      worker.on("completed", () => {
        last = performance.now();
        if (++completed === shards.length) resolve();
      });
      worker.on("failed", (job, err) => reject(new Error(`features job ${job?.id} failed: ${err.message}`)));
    });
  } finally {
    await worker.close();
    workerConn.disconnect();
  }
  const cpu = (cpuNow() - c0) / N;
  const seconds = (last - first!) / 1000;
  // Every vector is there: the run did the whole work.
  let vectors = 0;
  for (const s of shards) {
    const index = await getJson<{ ids: string[] }>(store, keys.featureIndex(encoder.id, name, s.shardId));
    vectors += index.ids.length;
  }
  if (vectors !== N) throw new Error(`end-to-end wrote ${vectors} of ${N} vectors`);
  return { rate: N / seconds, cpu, shards, seconds };
}

/** InceptionV3 at 299×299: 5.71 G multiply-adds. */
const GFLOP_PER_IMAGE = 11.42;

function describePeak(p: FmaPeak): string {
  return `${p.isa} FMA ${p.gflops.toFixed(0)} GFLOP/s on ${p.threads} threads over the wall time → fp32 limit ${(p.gflops / GFLOP_PER_IMAGE).toFixed(1)} img/s; ${p.gflopsPerCore.toFixed(0)} GFLOP per CPU second → an fp32 image needs ≥ ${((GFLOP_PER_IMAGE / p.gflopsPerCore) * 1000).toFixed(0)} ms CPU; ${load()}`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

runBench(async (cleanup) => {
  console.log(
    `capflow features benchmark: batch ${batch}, ORT intra-op threads ${cores}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}, sharp.concurrency ${sharp.concurrency()}; ${load()}`,
  );
  const images = await drawPhotos(N);
  console.log(describeImages(images));
  const datasetDir = await tempDir("dataset");
  cleanup.add("dataset dir", () => fs.rm(datasetDir, { recursive: true, force: true }));
  await writeDataset(datasetDir, images);

  const peakStart = await fmaPeak(cores);
  console.log(`  fp32 limit (start): ${describePeak(peakStart)}`);
  const encoder = await loadEncoder({ runtime: "onnx", threads: cores, logger: { info() {}, warn() {} } });
  cleanup.add("encoder", () => encoder.dispose());
  const int8 = values["no-int8"]
    ? undefined
    : await loadEncoder({
        runtime: "onnx",
        precision: "int8",
        threads: cores,
        logger: { info() {}, warn() {} },
      });
  if (int8) {
    cleanup.add("int8 encoder", () => int8.dispose());
    const q = int8.quality!;
    console.log(
      `  int8 encoder ${int8.id}: quality gate at build, cosine with fp32 on ${q.n} held-out emoji: mean ${q.mean.toFixed(4)}, p1 ${q.p1.toFixed(4)}, min ${q.min.toFixed(4)}`,
    );
  }

  // Decode once (also the tensors for the bare runs), then bare ORT on them.
  const dec = await decodeAll(images.map((i) => i.bytes));
  console.log(
    `  decode only (sharp, ${batch} at a time): ${dec.rate.toFixed(1)} img/s, ${(dec.cpu * 1000).toFixed(1)} ms CPU/img; ${load()}`,
  );
  // Rounds of bare ORT then end to end, back to back: on a shared machine the ratio within a round
  // is what compares; the figures are medians over rounds.
  const svc = await startServices(cleanup);
  const rounds: Array<{ bare: number; bareCpu: number; e2e: number; e2eCpu: number; ratio: number }> = [];
  const rounds8: Array<{ bare: number; bareCpu: number; e2e: number; e2eCpu: number }> = [];
  let shards: ShardList[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const bareR = await throughput(encoder, dec.tensors, batch);
    const bareCpuR = cpuSecondsPerImage();
    if (int8) {
      const b8 = await throughput(int8, dec.tensors, batch);
      const b8cpu = cpuSecondsPerImage();
      const e8 = await endToEnd(svc, int8, datasetDir, `bench-int8-${r}`);
      rounds8.push({ bare: b8, bareCpu: b8cpu, e2e: e8.rate, e2eCpu: e8.cpu });
      console.log(
        `  round ${r + 1}: bare-ort-int8 ${b8.toFixed(1)} img/s (${(b8cpu * 1000).toFixed(0)} ms CPU/img) = ${(b8 / bareR).toFixed(2)} × bare-ort (${(bareCpuR / b8cpu).toFixed(2)} × by CPU), end-to-end-int8 ${e8.rate.toFixed(1)} img/s (${(e8.cpu * 1000).toFixed(0)} ms CPU/img); ${load()}`,
      );
    }
    const e = await endToEnd(svc, encoder, datasetDir, `bench-${r}`);
    shards = e.shards;
    rounds.push({ bare: bareR, bareCpu: bareCpuR, e2e: e.rate, e2eCpu: e.cpu, ratio: e.rate / bareR });
    console.log(
      `  round ${r + 1}: bare-ort ${bareR.toFixed(1)} img/s (${(bareCpuR * 1000).toFixed(0)} ms CPU/img), end-to-end ${e.rate.toFixed(1)} img/s (${N} images, ${e.shards.length} shards of ≤${shardSize}, ${e.seconds.toFixed(2)} s first active → last completed, ${(e.cpu * 1000).toFixed(0)} ms CPU/img), ratio ${(e.rate / bareR).toFixed(2)}; ${load()}`,
    );
  }
  const bare = median(rounds.map((r) => r.bare));
  const bareCpu = median(rounds.map((r) => r.bareCpu));
  const e2e = {
    rate: median(rounds.map((r) => r.e2e)),
    ratio: median(rounds.map((r) => r.ratio)),
    shards,
    store: svc.store,
  };

  // Diagnosis: the same shards through extractShard, with the encoder's time per batch; then the
  // same with ORT's spin-waiting off.
  if (!values["no-diagnose"]) {
    const shardRun = async (enc: Encoder) => {
      let encodeSeconds = 0;
      let batches = 0;
      const t0 = performance.now();
      for (const shard of e2e.shards)
        await extractShard(e2e.store, enc, shard, {
          batchSize: batch,
          maxPixels: 50_000_000,
          onBatch: ({ seconds }) => {
            encodeSeconds += seconds;
            batches++;
          },
        });
      const wall = (performance.now() - t0) / 1000;
      return { rate: N / wall, wall, encodeSeconds, perBatch: encodeSeconds / batches };
    };
    const bareBatch = batch / bare;
    const a = await shardRun(encoder);
    console.log(
      `  extractShard (default ORT): ${a.rate.toFixed(1)} img/s; encoder busy ${((100 * a.encodeSeconds) / a.wall).toFixed(0)}% of the wall time, waiting for decode ${(a.wall - a.encodeSeconds).toFixed(2)} s of ${a.wall.toFixed(2)} s; encode ${(a.perBatch * 1000).toFixed(0)} ms per batch of ${batch} vs ${(bareBatch * 1000).toFixed(0)} ms bare (×${(a.perBatch / bareBatch).toFixed(2)}); ${load()}`,
    );
    const noSpin = await noSpinEncoder(encoder);
    try {
      const bareNoSpin = await throughput(noSpin, dec.tensors, batch);
      const b = await shardRun(noSpin);
      console.log(
        `  ORT spinning off: bare ${bareNoSpin.toFixed(1)} img/s (${(cpuSecondsPerImage() * 1000).toFixed(0)} ms CPU/img), extractShard ${b.rate.toFixed(1)} img/s = ${(b.rate / bareNoSpin).toFixed(2)} × its bare (default: ${(a.rate / bare).toFixed(2)}); ${load()}`,
      );
    } finally {
      await noSpin.dispose();
    }
    const bound = cores / (dec.cpu + bareCpu);
    console.log(
      `  CPU bound: ${cores} cores / (${(dec.cpu * 1000).toFixed(0)} ms decode + ${(bareCpu * 1000).toFixed(0)} ms encode CPU per image) = ${bound.toFixed(1)} img/s = ${(bareCpu / (dec.cpu + bareCpu)).toFixed(2)} × encode alone (${(cores / bareCpu).toFixed(1)} img/s): the most decode can cost end to end on ${cores} cores, with perfect overlap`,
    );
  }

  let tfjsRate: number | undefined;
  if (!values["no-tfjs"]) {
    const k = Math.min(N, Number(values["tfjs-images"]));
    const tfjs = await loadEncoder({ runtime: "tfjs", logger: { info() {}, warn() {} } });
    try {
      tfjsRate = await throughput(tfjs, dec.tensors.slice(0, k), batch);
      console.log(
        `  tfjs-wasm: ${tfjsRate.toFixed(2)} img/s (${tfjs.backend}, ${k} images + 1 warm-up batch), ${(cpuSecondsPerImage() * 1000).toFixed(0)} ms CPU/img; ${load()}`,
      );
    } finally {
      await tfjs.dispose();
    }
  }

  // The tutorial's method: one file read, decoded and encoded at a time.
  const m = Math.min(N, Number(values["one-images"]));
  await encoder.encode(dec.tensors[0]!, 1); // warm the batch-1 shape
  const t1 = performance.now();
  for (const img of images.slice(0, m)) {
    const bytes = await fs.readFile(path.join(datasetDir, img.name));
    const r = await preprocessImage(bytes);
    if (!r.ok) throw new Error(r.message);
    await encoder.encode(r.pixels, 1);
  }
  const one = m / ((performance.now() - t1) / 1000);
  console.log(
    `  one-at-a-time: ${one.toFixed(1)} img/s (${m} images, read+decode+encode, batch 1); ${load()}`,
  );

  console.log(`\nresults (medians of ${rounds.length} rounds; ${load()}):`);
  console.log(`end-to-end: ${e2e.rate.toFixed(1)} img/s`);
  console.log(`bare-ort: ${bare.toFixed(1)} img/s`);
  if (tfjsRate !== undefined) console.log(`tfjs-wasm: ${tfjsRate.toFixed(1)} img/s`);
  console.log(`one-at-a-time: ${one.toFixed(1)} img/s`);
  console.log(`end-to-end/bare-ort: ${e2e.ratio.toFixed(2)}`);
  let int8Goals: string[] = [];
  if (int8) {
    const peakEnd = await fmaPeak(cores);
    console.log(`fp32 limit (end): ${describePeak(peakEnd)}`);
    const limit = Math.max(peakStart.gflops, peakEnd.gflops) / GFLOP_PER_IMAGE;
    const limitCpu = GFLOP_PER_IMAGE / Math.max(peakStart.gflopsPerCore, peakEnd.gflopsPerCore);
    const b8 = median(rounds8.map((r) => r.bare));
    const b8cpu = median(rounds8.map((r) => r.bareCpu));
    const e8 = median(rounds8.map((r) => r.e2e));
    const e8cpu = median(rounds8.map((r) => r.e2eCpu));
    const e32cpu = median(rounds.map((r) => r.e2eCpu));
    console.log(
      `bare-ort: ${(bareCpu * 1000).toFixed(0)} ms CPU/img; end-to-end: ${(e32cpu * 1000).toFixed(0)} ms CPU/img`,
    );
    console.log(`bare-ort-int8: ${b8.toFixed(1)} img/s, ${(b8cpu * 1000).toFixed(0)} ms CPU/img`);
    console.log(`end-to-end-int8: ${e8.toFixed(1)} img/s, ${(e8cpu * 1000).toFixed(0)} ms CPU/img`);
    const bareRatio = median(rounds8.map((r, i) => r.bare / rounds[i]!.bare));
    const bareRatioCpu = median(rounds8.map((r, i) => rounds[i]!.bareCpu / r.bareCpu));
    console.log(
      `bare-ort-int8/bare-ort: ${bareRatio.toFixed(2)} (by CPU s per image ${bareRatioCpu.toFixed(2)}; per round ${rounds8.map((r, i) => (r.bare / rounds[i]!.bare).toFixed(2)).join(", ")})`,
    );
    console.log(
      `end-to-end-int8 / fp32 limit: ${(e8 / limit).toFixed(2)} by wall time (${e8.toFixed(1)} vs ${limit.toFixed(1)} img/s); by CPU ${(limitCpu / e8cpu).toFixed(2)} (${(e8cpu * 1000).toFixed(0)} ms CPU/img vs the ${(limitCpu * 1000).toFixed(0)} ms an fp32 image needs at FMA peak)`,
    );
    // Agreement on these photos (the gate above is on held-out emoji).
    const sample = dec.tensors.slice(0, Math.min(dec.tensors.length, 32));
    const stacked = new Float32Array(sample.length * sample[0]!.length);
    sample.forEach((t, i) => stacked.set(t, i * t.length));
    const cos = summariseCosines(
      rowCosines(
        await encoder.encode(stacked, sample.length),
        await int8.encode(stacked, sample.length),
        2048,
      ),
    );
    console.log(
      `cosine(int8, fp32) on ${cos.n} drawn photos: mean ${cos.mean.toFixed(4)}, p1 ${cos.p1.toFixed(4)}, min ${cos.min.toFixed(4)}`,
    );
    int8Goals = [
      `bare int8 ≥ 2.0 × bare fp32: ${bareRatio >= 2 ? "met" : "MISSED"} (${bareRatio.toFixed(2)}; by CPU ${bareRatioCpu.toFixed(2)})`,
      `end-to-end int8 ≥ 1.5 × fp32 limit: ${e8 / limit >= 1.5 ? "met" : "MISSED"} by wall (${(e8 / limit).toFixed(2)}), ${limitCpu / e8cpu >= 1.5 ? "met" : "MISSED"} by CPU (${(limitCpu / e8cpu).toFixed(2)})`,
    ];
  }
  // CPU time per image is far less sensitive than wall time to other processes on the machine.
  console.log(
    `end-to-end/bare-ort by CPU s per image: ${median(rounds.map((r) => r.bareCpu / r.e2eCpu)).toFixed(2)} (wall ratios per round: ${rounds.map((r) => r.ratio.toFixed(2)).join(", ")})`,
  );
  const goals = [
    e2e.rate >= 20 ? "end-to-end ≥ 20 img/s: met" : `end-to-end ≥ 20 img/s: MISSED (${e2e.rate.toFixed(1)})`,
    e2e.ratio >= 0.8
      ? "end-to-end ≥ 0.8 × bare-ort: met"
      : `end-to-end ≥ 0.8 × bare-ort: MISSED (${e2e.ratio.toFixed(2)})`,
  ];
  console.log(`goals: ${[...goals, ...int8Goals].join("; ")}`);
});
