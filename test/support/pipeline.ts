import pino from "pino";
import {
  createQueue,
  createRedis,
  keys,
  readDatasetInfo,
  getJson,
  type ObjectStore,
  type ShardList,
} from "@capflow/common";
import { loadEncoder, loadTf, type Encoder } from "@capflow/ml";
import { ingestDataset } from "@capflow/ingest";
import { extractShard, writeShard } from "@capflow/feature-worker";
import { trainRun, type RunResult } from "@capflow/trainer";
import { freshPrefix, redisUrl, tempDir } from "./services.ts";
import { writeJsonlDataset } from "./images.ts";

const silent = pino({ level: "silent" });
let encoderPromise: Promise<Encoder> | undefined;

/** One real ONNX encoder per test file (it takes seconds to load). */
export function sharedEncoder(): Promise<Encoder> {
  encoderPromise ??= loadEncoder({ runtime: "onnx" });
  return encoderPromise;
}

/** What a feature worker does with one shard, without the queue: extract it and write its features. */
export async function extractAndWriteShard(
  store: ObjectStore,
  encoder: Encoder,
  dataset: string,
  shardId: string,
): Promise<void> {
  const list = await getJson<ShardList>(store, keys.shardList(dataset, shardId));
  const out = await extractShard(store, encoder, list, { batchSize: 8, maxPixels: 50_000_000 });
  await writeShard(
    store,
    {
      encoderId: encoder.id,
      dataset,
      shardId,
      dtype: "float32",
      dim: 2048,
      ids: out.ids,
      failures: out.failures,
    },
    out.vectors,
  );
}

/**
 * Ingest and feature extraction on drawn images, without workers: `images` drawn images (plus the
 * given bad files, which the encoder quarantines) ingested into `store` in shards of `shardSize`,
 * every shard extracted with the real encoder.
 */
export async function prepareExtractedDataset(
  store: ObjectStore,
  opts: { images?: number; dataset?: string; shardSize?: number; bad?: Record<string, Buffer> } = {},
): Promise<{ encoder: Encoder; dataset: string }> {
  const dataset = opts.dataset ?? "drawn";
  const encoder = await sharedEncoder();
  const conn = createRedis(redisUrl(), "producer");
  const queue = createQueue("features", { connection: conn, prefix: freshPrefix() });
  try {
    const dir = await writeJsonlDataset(await tempDir("ds"), opts.images ?? 24, opts.bad);
    await ingestDataset(store, queue, {
      dataset,
      format: "jsonl-folder",
      dir,
      shardSize: opts.shardSize ?? 8,
      onError: "fail",
    });
    for (const shardId of (await readDatasetInfo(store, dataset)).shards)
      await extractAndWriteShard(store, encoder, dataset, shardId);
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
  }
  return { encoder, dataset };
}

/**
 * The real pipeline on drawn images, without workers: ingest into `store`, extract every shard with
 * the real encoder, train a small model for `epochs` and publish it as `publishAs`.
 */
export async function preparePublishedModel(
  store: ObjectStore,
  opts: { images?: number; epochs?: number; publishAs?: string; dataset?: string; runId?: string } = {},
): Promise<{ encoder: Encoder; result: RunResult; dataset: string }> {
  const { encoder, dataset } = await prepareExtractedDataset(store, {
    images: opts.images ?? 24,
    ...(opts.dataset ? { dataset: opts.dataset } : {}),
  });
  const { tf } = await loadTf();
  const result = await trainRun(
    { store, tf, log: silent },
    {
      runId: opts.runId ?? `run-${dataset}`,
      dataset,
      encoderId: encoder.id,
      method: "teacher-forcing",
      epochs: opts.epochs ?? 2,
      seed: 1,
      batchSize: 16,
      learningRate: 0.01,
      minWordCount: 1,
      model: { embedDim: 16, units: 32, dropout: 0 },
      publishAs: opts.publishAs ?? "default",
      beamWidth: 2,
    },
  );
  return { encoder, result, dataset };
}
