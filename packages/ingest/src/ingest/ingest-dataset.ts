import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import {
  DatasetName,
  DEFAULT_AUGMENT_RECIPE,
  getJson,
  imageExtension,
  sha256,
  type DatasetInfo,
  type ManifestRow,
  keys,
  putJson,
  type JobInput,
  type ObjectStore,
  type ShardList,
  type TypedQueue,
} from "@capflow/common";
import { readContainedFile } from "../datasets/dataset-files.ts";
import {
  locateDataset,
  readDataset,
  type DatasetFormat,
  type ReadIssue,
  type Split,
} from "../datasets/index.ts";

export type { DatasetInfo, ManifestRow };
import { featuresJobId, ShardBuilder, shardIdFor, splitFor, viewsFor } from "./sharding.ts";

/** Each view costs a full encode of its image: 8 views make a training image 9× the work. */
export const MAX_AUGMENT_VIEWS = 8;

export interface IngestOptions {
  dataset: string;
  format: DatasetFormat;
  dir: string;
  shardSize: number;
  onError: "skip" | "fail";
  /** Images read and stored concurrently. */
  concurrency?: number;
  onIssue?: (issue: ReadIssue) => void;
  onProgress?: (p: { images: number; total?: number }) => void;
  /**
   * Augmented views of each training image that the feature workers extract besides its clean vector
   * (default 0): extra training rows for the trainer, never used for validation, test or serving.
   * Recorded in the shard lists (and so in the shard ids), so every worker extracts the same thing.
   */
  augmentViews?: number;
}

export interface IngestSummary {
  dataset: string;
  images: number;
  captions: number;
  duplicates: number;
  issues: Record<ReadIssue["kind"], number>;
  shards: number;
  shardsEnqueued: number;
  shardsAlreadyQueued: number;
  shardsAlreadyDone: number;
  encoderId?: string;
  /** Images per split, and how many took their split from the dataset's lists vs. the file-name hash. */
  splits: Record<Split, number>;
  splitSource: { listed: number; hashed: number };
}

/**
 * Reads a dataset, stores each image once under its sha256, writes the manifest, and enqueues one
 * `features` job per shard. Every step is keyed by content, so a second run (or a rerun after a crash)
 * stores nothing new and enqueues only the shards that are neither queued nor done.
 */
export async function ingestDataset(
  store: ObjectStore,
  queue: TypedQueue<"features">,
  opts: IngestOptions,
): Promise<IngestSummary> {
  const name = DatasetName.safeParse(opts.dataset);
  if (!name.success)
    throw new Error(`dataset ${JSON.stringify(opts.dataset)}: ${name.error.issues[0]!.message}`);
  const { imagesDir } = await locateDataset(opts.format, opts.dir);
  const total = await fs.readdir(imagesDir).then(
    (f) => f.length,
    () => undefined,
  );
  const encoderId = await getJson<{ id: string }>(store, "encoders/current.json").then(
    (e) => e.id,
    () => undefined,
  );
  const augmentViews = opts.augmentViews ?? 0;
  if (!Number.isInteger(augmentViews) || augmentViews < 0 || augmentViews > MAX_AUGMENT_VIEWS)
    throw new RangeError(`augment views must be an integer in 0..${MAX_AUGMENT_VIEWS}, got ${augmentViews}`);
  const summary: IngestSummary = {
    dataset: opts.dataset,
    images: 0,
    captions: 0,
    duplicates: 0,
    issues: { malformed: 0, "missing-image": 0, skipped: 0 },
    shards: 0,
    shardsEnqueued: 0,
    shardsAlreadyQueued: 0,
    shardsAlreadyDone: 0,
    encoderId,
    splits: { train: 0, val: 0, test: 0 },
    splitSource: { listed: 0, hashed: 0 },
  };
  const info: DatasetInfo = {
    name: opts.dataset,
    format: opts.format,
    images: 0,
    captions: 0,
    splits: { train: 0, val: 0, test: 0 },
    shards: [],
    shardSize: opts.shardSize,
    ...(augmentViews > 0 ? { augment: { views: augmentViews, recipe: DEFAULT_AUGMENT_RECIPE } } : {}),
  };

  // The manifest streams to a local temp file and is streamed into the store at the end.
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-ingest-"));
  const manifestPath = path.join(tmpDir, "manifest.jsonl");
  const manifest = createWriteStream(manifestPath);
  // Content seen in this run: a Set of 64-char ids (~100 B each, 10 MB per 100k images) is the one
  // thing that grows with the dataset; it folds duplicate files into one image.
  const seen = new Map<string, number>();
  const shards = new ShardBuilder(opts.shardSize);
  // What a shard list records of each image until its shard is written (at most one shard's worth).
  const pendingById = new Map<string, { key: string; file: string; split: Split; captions: string[] }>();
  const viewsById = new Map<string, number>();
  const SPLIT_INDEX: Record<Split, 0 | 1 | 2> = { train: 0, val: 1, test: 2 };

  const flushShard = async (ids: string[]) => {
    const views = ids.map((id) => viewsById.get(id) ?? 0);
    const augmented = views.some((v) => v > 0);
    const shardId = shardIdFor(
      opts.dataset,
      ids,
      augmented ? { recipe: DEFAULT_AUGMENT_RECIPE, views } : undefined,
    );
    info.shards.push(shardId);
    summary.shards++;
    const counts: [number, number, number] = [0, 0, 0];
    const list: ShardList = {
      dataset: opts.dataset,
      shardId,
      images: ids.map((id, i) => {
        const { key, file, split, captions } = pendingById.get(id)!;
        counts[SPLIT_INDEX[split]]++;
        return { id, key, file, split, captions, ...(views[i]! > 0 ? { views: views[i] } : {}) };
      }),
      ...(augmented ? { recipe: DEFAULT_AUGMENT_RECIPE } : {}),
    };
    (info.shardSplits ??= []).push(counts);
    for (const id of ids) {
      pendingById.delete(id);
      viewsById.delete(id);
    }
    const shardKey = keys.shardList(opts.dataset, shardId);
    await putJson(store, shardKey, list);
    if (encoderId && (await store.head(keys.featureIndex(encoderId, opts.dataset, shardId)))) {
      summary.shardsAlreadyDone++;
      return;
    }
    const jobId = featuresJobId(opts.dataset, shardId);
    const existing = await queue.getJob(jobId);
    if (existing && !(await existing.isFailed())) {
      summary.shardsAlreadyQueued++;
      return;
    }
    if (existing) await existing.remove();
    const data: JobInput<"features"> = { dataset: opts.dataset, shardId, shardKey };
    await queue.add("shard", data, { jobId });
    summary.shardsEnqueued++;
  };

  const records = readDataset(opts.format, opts.dir, {
    onError: opts.onError,
    onIssue: (issue) => {
      summary.issues[issue.kind]++;
      opts.onIssue?.(issue);
    },
  });
  const concurrency = opts.concurrency ?? 16;
  const writeLine = async (line: string) => {
    if (!manifest.write(line)) await once(manifest, "drain");
  };

  try {
    let batch: Array<{ image: string; captions: string[]; split?: Split }> = [];
    const drain = async () => {
      // Store a window of images concurrently, then commit them in file order: order and shard
      // boundaries stay deterministic.
      const stored = await Promise.all(
        batch.map(async (record) => {
          const bytes = await readContainedFile(imagesDir, record.image);
          const id = sha256(bytes);
          const key = keys.image(id, imageExtension(bytes));
          if (!(await store.head(key))) await store.putIfAbsent(key, bytes);
          return { record, id, key };
        }),
      );
      batch = [];
      for (const { record, id, key } of stored) {
        summary.captions += record.captions.length;
        info.captions += record.captions.length;
        if (seen.has(id)) {
          summary.duplicates++;
          continue;
        }
        seen.set(id, 1);
        const split = record.split ?? splitFor(record.image);
        const row: ManifestRow = { id, key, file: record.image, split, captions: record.captions };
        await writeLine(`${JSON.stringify(row)}\n`);
        summary.images++;
        info.images++;
        info.splits[split]++;
        summary.splits[split]++;
        summary.splitSource[record.split ? "listed" : "hashed"]++;
        pendingById.set(id, { key, file: record.image, split, captions: record.captions });
        if (viewsFor(split, augmentViews) > 0) viewsById.set(id, viewsFor(split, augmentViews));
        const full = shards.add(id);
        if (full) await flushShard(full);
      }
      opts.onProgress?.({ images: summary.images + summary.duplicates, total });
    };
    for await (const record of records) {
      batch.push(record);
      if (batch.length >= concurrency) await drain();
    }
    await drain();
    const rest = shards.flush();
    if (rest) await flushShard(rest);
    manifest.end();
    await once(manifest, "finish");
    // Streamed from the temp file (a multipart upload on S3): a 3.3M-image manifest is ~0.9 GB.
    await store.putStream(keys.manifest(opts.dataset), createReadStream(manifestPath), {
      contentType: "application/x-ndjson",
    });
    await putJson(store, keys.datasetInfo(opts.dataset), info);
  } finally {
    manifest.destroy();
    await fs.rm(tmpDir, { recursive: true, force: true });
  }
  return summary;
}
