import fs from "node:fs/promises";
import {
  DatasetName,
  getJson,
  imageExtension,
  sha256,
  keys,
  type DatasetInfo,
  type ManifestRow,
  type ObjectStore,
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
import { DatasetWriter, type IngestSummary, type StoredRecord } from "./dataset-writer.ts";

export type { DatasetInfo, ManifestRow, IngestSummary };

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

/** Checks the options both ingest paths share and reads the current encoder (to skip done shards). */
export async function prepareIngest(
  store: ObjectStore,
  opts: Pick<IngestOptions, "dataset" | "augmentViews">,
): Promise<{ augmentViews: number; encoderId?: string }> {
  const name = DatasetName.safeParse(opts.dataset);
  if (!name.success)
    throw new Error(`dataset ${JSON.stringify(opts.dataset)}: ${name.error.issues[0]!.message}`);
  const augmentViews = opts.augmentViews ?? 0;
  if (!Number.isInteger(augmentViews) || augmentViews < 0 || augmentViews > MAX_AUGMENT_VIEWS)
    throw new RangeError(`augment views must be an integer in 0..${MAX_AUGMENT_VIEWS}, got ${augmentViews}`);
  const encoderId = await getJson<{ id: string }>(store, "encoders/current.json").then(
    (e) => e.id,
    () => undefined,
  );
  return { augmentViews, encoderId };
}

/** Stores one image under its sha256 (once: a HEAD first, then a create-if-absent). */
export async function storeImage(
  store: ObjectStore,
  imagesDir: string,
  image: string,
): Promise<{ id: string; key: string }> {
  const bytes = await readContainedFile(imagesDir, image);
  const id = sha256(bytes);
  const key = keys.image(id, imageExtension(bytes));
  if (!(await store.head(key))) await store.putIfAbsent(key, bytes);
  return { id, key };
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
  const { augmentViews, encoderId } = await prepareIngest(store, opts);
  const { imagesDir } = await locateDataset(opts.format, opts.dir);
  const total = await fs.readdir(imagesDir).then(
    (f) => f.length,
    () => undefined,
  );
  const writer = await DatasetWriter.open(store, queue, {
    dataset: opts.dataset,
    format: opts.format,
    shardSize: opts.shardSize,
    augmentViews,
    encoderId,
  });
  const { summary } = writer;
  // Content seen in this run: a Set of 64-char ids (~100 B each, 10 MB per 100k images) is the one
  // thing that grows with the dataset; it folds duplicate files into one image. Past one machine,
  // `capflow ingest --distribute` keeps this set in Redis instead (distributed-ingest.ts).
  const seen = new Set<string>();
  const records = readDataset(opts.format, opts.dir, {
    onError: opts.onError,
    onIssue: (issue) => {
      summary.issues[issue.kind]++;
      opts.onIssue?.(issue);
    },
  });
  const concurrency = opts.concurrency ?? 16;

  try {
    let batch: Array<{ image: string; captions: string[]; split?: Split }> = [];
    const drain = async () => {
      // Store a window of images concurrently, then commit them in file order: order and shard
      // boundaries stay deterministic.
      const stored: StoredRecord[] = await Promise.all(
        batch.map(async (record) => ({ ...record, ...(await storeImage(store, imagesDir, record.image)) })),
      );
      batch = [];
      for (const record of stored) {
        const first = !seen.has(record.id);
        seen.add(record.id);
        await writer.add(record, first);
      }
      opts.onProgress?.({ images: summary.images + summary.duplicates, total });
    };
    for await (const record of records) {
      batch.push(record);
      if (batch.length >= concurrency) await drain();
    }
    await drain();
    return await writer.finish();
  } finally {
    await writer.dispose();
  }
}
