/**
 * How capflow's data paths scale with the dataset: synthetic float16 feature shards (random vectors,
 * written straight into a local store, no encoder) with 5 synthetic captions per image, at each size.
 *
 *   pnpm bench scale [--sizes 10000,100000,1000000] [--shard-size 1000] [--steps 20] [--read-shards 40]
 *
 * Per size:
 * - trainer: peak RSS of a child process running the trainer's own streamed passes
 *   (run/streamed-epoch.ts, 4 shards a window, 4 prefetched): the shard scan that builds the vocabulary,
 *   a stream of the train split through `--read-shards` shards, `--steps` teacher-forcing batches of 64
 *   captions of a streamed epoch, and the validation pass over its first window; samples/s is captions
 *   trained per second over those steps (and CPU ms per caption, the child's user + system time). `rssRatio` is each size's peak RSS over the first size's,
 *   measured in the same run;
 * - manifest: write (putStream from a generator) and streamed read (readManifest) times;
 * - bulk captions: submit time of a whole-dataset batch and of a `--split test` batch, and Redis
 *   commands per status poll (INFO total_commands_processed around the call, minus the INFO itself).
 * The machine may be shared: the load average is printed with each size.
 */
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  createQueue,
  createRedis,
  keys,
  LocalStore,
  npyHeader,
  putJson,
  readManifest,
  startEmbeddedRedis,
  type DatasetInfo,
  type ManifestRow,
  type ShardIndex,
  type ShardList,
} from "@capflow/common";
import {
  createCaptionModel,
  fitFeatureTransform,
  loadTf,
  tfjsDecoder,
  vocabularyFromCounts,
} from "@capflow/ml";
import { captionBatchStatus, CaptionJobRequest, submitCaptionBatch } from "@capflow/api";
import {
  scanShards,
  splitWindows,
  storeShardSource,
  trainStreamedEpoch,
  validateStreamed,
  type StreamedData,
} from "@capflow/trainer";
import { load, rng, tempDir } from "./_support.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000,1000000" },
    "shard-size": { type: "string", default: "1000" },
    steps: { type: "string", default: "20" },
    "read-shards": { type: "string", default: "40" },
    // Internal: the child process that measures the trainer side of one size.
    child: { type: "string" },
    dataset: { type: "string" },
  },
});
const DIM = 2048;
const ENCODER = "synthetic-f16";
const WORDS = Array.from({ length: 1000 }, (_, i) => `w${i}`);
const SPLITS = ["train", "val", "test"] as const;
const steps = Number(values.steps);
const readShards = Number(values["read-shards"]);

function captionsOf(seed: number): string[] {
  const rand = rng(seed);
  return Array.from({ length: 5 }, () =>
    Array.from({ length: 8 + Math.floor(rand() * 8) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(
      " ",
    ),
  );
}
const idOf = (i: number) => `img${String(i).padStart(8, "0")}`;
const splitOf = (i: number) => SPLITS[i % 10 < 8 ? 0 : i % 10 === 8 ? 1 : 2]!;

async function generate(store: LocalStore, dataset: string, images: number, shardSize: number) {
  const info: DatasetInfo = {
    name: dataset,
    format: "synthetic",
    images,
    captions: images * 5,
    splits: { train: 0, val: 0, test: 0 },
    shards: [],
    shardSize,
    shardSplits: [],
  };
  const half = new Uint16Array(shardSize * DIM);
  for (let start = 0; start < images; start += shardSize) {
    const n = Math.min(shardSize, images - start);
    const shardId = `s${String(start / shardSize).padStart(6, "0")}`;
    const counts: [number, number, number] = [0, 0, 0];
    const list: ShardList = { dataset, shardId, images: [] };
    for (let i = start; i < start + n; i++) {
      const split = splitOf(i);
      counts[SPLITS.indexOf(split) as 0 | 1 | 2] += 1;
      info.splits[split]++;
      list.images.push({
        id: idOf(i),
        key: `images/${idOf(i)}.png`,
        file: `${i}.jpg`,
        split,
        captions: captionsOf(i),
      });
    }
    // Random halves in [0.125, 0.25): finite, and no float16 → float32 special cases.
    randomFillSync(half);
    for (let k = 0; k < n * DIM; k++) half[k] = 0x3000 | (half[k]! & 0x3ff);
    const body = Buffer.from(half.buffer, 0, n * DIM * 2);
    const index: ShardIndex = {
      encoderId: ENCODER,
      dataset,
      shardId,
      dtype: "float16",
      dim: DIM,
      ids: list.images.map((i) => i.id),
      failures: [],
    };
    await putJson(store, keys.shardList(dataset, shardId), list);
    await store.put(
      keys.featureMatrix(ENCODER, dataset, shardId),
      Buffer.concat([npyHeader(n, DIM, "float16"), body]),
    );
    await putJson(store, keys.featureIndex(ENCODER, dataset, shardId), index);
    info.shards.push(shardId);
    info.shardSplits!.push(counts);
  }
  await putJson(store, keys.datasetInfo(dataset), info);
  return info;
}

/** The trainer side, in a process of its own so that its peak RSS is its own. */
async function child(storeDir: string, dataset: string) {
  const store = new LocalStore(storeDir);
  // What trainRun does before its first epoch: scan the shard lists and indexes (no matrices).
  const scanStarted = performance.now();
  const scan = await scanShards(store, dataset, ENCODER);
  const scanSeconds = (performance.now() - scanStarted) / 1000;
  const data: StreamedData = {
    source: storeShardSource(store, dataset, ENCODER),
    scan,
    windowShards: 4,
    prefetchShards: 4,
  };
  // Pass 1: stream windows through `readShards` shards (read cost and memory of the stream alone).
  let images = 0;
  const readStarted = performance.now();
  const reading = {
    ...data,
    scan: { ...scan, shardsWith: { ...scan.shardsWith, train: scan.shardsWith.train.slice(0, readShards) } },
  };
  for await (const w of splitWindows(reading, "train", { shuffle: { seed: 1, epoch: 0 } }))
    images += w.images.length;
  const readSeconds = (performance.now() - readStarted) / 1000;
  // Pass 2: `steps` batches of a streamed epoch over the whole train split, then validation's first window.
  const { tf } = await loadTf();
  const vocab = vocabularyFromCounts(scan.trainWords, { minCount: 1 });
  const maxLength = Math.min(40, scan.longestTrainCaption + 2);
  const model = createCaptionModel(tf, { vocabSize: vocab.size, maxLength, seed: 1 });
  const transform = fitFeatureTransform("sqrt-l2", new Float32Array(DIM), DIM);
  const enc = { transform, vocab, maxLength, clean: {} };
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const r = await trainStreamedEpoch(model, data, enc, {
    method: "teacher",
    batchSize: 64,
    seed: 1,
    epoch: 0,
    maxBatches: steps,
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuMsPerSample = (cpu.user + cpu.system) / 1000 / (r.batches * 64);
  await validateStreamed(model, tfjsDecoder(model), data, enc, { maxWindows: 1 });
  model.dispose();
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    `${JSON.stringify({
      images,
      scanSeconds,
      readSeconds,
      samplesPerSecond: (r.batches * 64) / trainSeconds,
      cpuMsPerSample,
      trainSeconds,
      peakRssMiB,
    })}\n`,
  );
}

async function trainerFigures(storeDir: string, dataset: string) {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [...process.execArgv, import.meta.filename, "--child", storeDir, "--dataset", dataset],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let text = "";
    p.stdout.on("data", (d: Buffer) => (text += d.toString()));
    p.once("exit", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`trainer child exited ${code}`)),
    );
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as {
    images: number;
    scanSeconds: number;
    readSeconds: number;
    samplesPerSecond: number;
    cpuMsPerSample: number;
    peakRssMiB: number;
  };
}

async function manifestFigures(store: LocalStore, dataset: string, images: number) {
  const started = performance.now();
  await store.putStream(
    keys.manifest(dataset),
    (async function* () {
      let chunk = "";
      for (let i = 0; i < images; i++) {
        const row: ManifestRow = {
          id: idOf(i),
          key: `images/${idOf(i)}.png`,
          file: `${i}.jpg`,
          split: splitOf(i),
          captions: captionsOf(i),
        };
        chunk += `${JSON.stringify(row)}\n`;
        if (chunk.length > 1 << 20) {
          yield chunk;
          chunk = "";
        }
      }
      if (chunk) yield chunk;
    })(),
  );
  const writeSeconds = (performance.now() - started) / 1000;
  const readStarted = performance.now();
  let rows = 0;
  for await (const _ of readManifest(store, dataset)) rows++;
  const readSeconds = (performance.now() - readStarted) / 1000;
  if (rows !== images) throw new Error(`manifest read ${rows} rows, wrote ${images}`);
  const bytes = (await store.head(keys.manifest(dataset)))!.size;
  return { writeSeconds, readSeconds, bytes };
}

async function bulkFigures(store: LocalStore, redisUrl: string, dataset: string) {
  const redis = createRedis(redisUrl, "producer");
  const probe = createRedis(redisUrl, "producer");
  const prefix = `bench-${dataset}`;
  const queue = createQueue("caption-bulk", { connection: redis, prefix });
  const deps = { store, queue, redis };
  const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info("stats"))![1]);
  try {
    const out: Record<string, number> = {};
    for (const split of [undefined, "test"] as const) {
      const started = performance.now();
      const { id, shards } = await submitCaptionBatch(deps, CaptionJobRequest.parse({ dataset, split }));
      out[`submit${split ? "Test" : "All"}Seconds`] = (performance.now() - started) / 1000;
      out[`shards${split ? "Test" : "All"}`] = shards;
      const before = await processed();
      await captionBatchStatus(deps, id);
      out[`commandsPerPoll${split ? "Test" : "All"}`] = (await processed()) - before - 1;
    }
    await queue.obliterate({ force: true });
    return out;
  } finally {
    await queue.close();
    redis.disconnect();
    probe.disconnect();
  }
}

if (values.child) {
  await child(values.child, values.dataset!);
} else {
  const root = await tempDir("scale");
  const store = new LocalStore(path.join(root, "store"));
  const redis = await startEmbeddedRedis({ dataDir: path.join(root, "redis"), persistence: false });
  const shardSize = Number(values["shard-size"]);
  let firstRss: number | undefined;
  try {
    for (const size of values.sizes.split(",").map(Number)) {
      const dataset = `scale${size}`;
      const genStarted = performance.now();
      const info = await generate(store, dataset, size, shardSize);
      const genSeconds = (performance.now() - genStarted) / 1000;
      const manifest = await manifestFigures(store, dataset, size);
      const bulk = await bulkFigures(store, redis.url, dataset);
      const trainer = await trainerFigures(store.location, dataset);
      firstRss ??= trainer.peakRssMiB;
      console.log(
        JSON.stringify({
          images: size,
          shards: info.shards.length,
          generateSeconds: +genSeconds.toFixed(1),
          manifest: {
            mib: +(manifest.bytes / 2 ** 20).toFixed(1),
            writeSeconds: +manifest.writeSeconds.toFixed(2),
            readSeconds: +manifest.readSeconds.toFixed(2),
          },
          bulk,
          trainer: {
            peakRssMiB: Math.round(trainer.peakRssMiB),
            rssRatio: +(trainer.peakRssMiB / firstRss).toFixed(2),
            scanSeconds: +trainer.scanSeconds.toFixed(1),
            samplesPerSecond: +trainer.samplesPerSecond.toFixed(1),
            cpuMsPerSample: +trainer.cpuMsPerSample.toFixed(1),
            streamImagesPerSecond: Math.round(trainer.images / trainer.readSeconds),
          },
          load: load(),
        }),
      );
      await fs.rm(path.join(store.location, "features"), { recursive: true, force: true });
      await fs.rm(path.join(store.location, "datasets", dataset), { recursive: true, force: true });
    }
  } finally {
    await redis.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}
