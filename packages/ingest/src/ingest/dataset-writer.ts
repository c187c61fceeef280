import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import {
  DEFAULT_AUGMENT_RECIPE,
  keys,
  putJson,
  type DatasetInfo,
  type JobInput,
  type ManifestRow,
  type ObjectStore,
  type ShardList,
  type TypedQueue,
} from "@capflow/common";
import type { DatasetFormat, ReadIssue, Split } from "../datasets/index.ts";
import { featuresJobId, ShardBuilder, shardIdFor, splitFor, viewsFor } from "./sharding.ts";

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

/** A dataset record whose image is stored: what the writer needs of it. */
export interface StoredRecord {
  image: string;
  captions: string[];
  /** The split the dataset's lists gave it, if any. */
  split?: Split;
  id: string;
  key: string;
}

export interface WriterOptions {
  dataset: string;
  format: DatasetFormat;
  shardSize: number;
  augmentViews: number;
  encoderId?: string;
}

const SPLIT_INDEX: Record<Split, 0 | 1 | 2> = { train: 0, val: 1, test: 2 };

/**
 * Turns stored records, in dataset order, into the manifest, the shard lists and one `features` job
 * per shard. Both ingest paths (one process, or ranges stored by ingest workers and assembled) commit
 * through it, so their outputs are the same bytes. Memory is one shard's worth: the manifest streams
 * to a temp file and from there into the store.
 */
export class DatasetWriter {
  readonly summary: IngestSummary;
  private readonly info: DatasetInfo;
  private readonly shards: ShardBuilder;
  // What a shard list records of each image until its shard is written (at most one shard's worth).
  private readonly pendingById = new Map<
    string,
    { key: string; file: string; split: Split; captions: string[] }
  >();
  private readonly viewsById = new Map<string, number>();

  private constructor(
    private readonly store: ObjectStore,
    private readonly queue: TypedQueue<"features">,
    private readonly opts: WriterOptions,
    private readonly tmpDir: string,
    private readonly manifest: WriteStream,
  ) {
    this.shards = new ShardBuilder(opts.shardSize);
    this.summary = {
      dataset: opts.dataset,
      images: 0,
      captions: 0,
      duplicates: 0,
      issues: { malformed: 0, "missing-image": 0, skipped: 0 },
      shards: 0,
      shardsEnqueued: 0,
      shardsAlreadyQueued: 0,
      shardsAlreadyDone: 0,
      encoderId: opts.encoderId,
      splits: { train: 0, val: 0, test: 0 },
      splitSource: { listed: 0, hashed: 0 },
    };
    this.info = {
      name: opts.dataset,
      format: opts.format,
      images: 0,
      captions: 0,
      splits: { train: 0, val: 0, test: 0 },
      shards: [],
      shardSize: opts.shardSize,
      ...(opts.augmentViews > 0
        ? { augment: { views: opts.augmentViews, recipe: DEFAULT_AUGMENT_RECIPE } }
        : {}),
    };
  }

  static async open(
    store: ObjectStore,
    queue: TypedQueue<"features">,
    opts: WriterOptions,
  ): Promise<DatasetWriter> {
    const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-ingest-"));
    const manifest = createWriteStream(path.join(tmpDir, "manifest.jsonl"));
    return new DatasetWriter(store, queue, opts, tmpDir, manifest);
  }

  /** Commits one record; `first` is false for a file whose content an earlier record already had. */
  async add(record: StoredRecord, first: boolean): Promise<void> {
    const { summary, info } = this;
    summary.captions += record.captions.length;
    info.captions += record.captions.length;
    if (!first) {
      summary.duplicates++;
      return;
    }
    const { id, key } = record;
    const split = record.split ?? splitFor(record.image);
    const row: ManifestRow = { id, key, file: record.image, split, captions: record.captions };
    if (!this.manifest.write(`${JSON.stringify(row)}\n`)) await once(this.manifest, "drain");
    summary.images++;
    info.images++;
    info.splits[split]++;
    summary.splits[split]++;
    summary.splitSource[record.split ? "listed" : "hashed"]++;
    this.pendingById.set(id, { key, file: record.image, split, captions: record.captions });
    const views = viewsFor(split, this.opts.augmentViews);
    if (views > 0) this.viewsById.set(id, views);
    const full = this.shards.add(id);
    if (full) await this.flushShard(full);
  }

  /** Writes the last shard, the manifest and `dataset.json` (last: the dataset is complete). */
  async finish(): Promise<IngestSummary> {
    const rest = this.shards.flush();
    if (rest) await this.flushShard(rest);
    this.manifest.end();
    await once(this.manifest, "finish");
    // Streamed from the temp file (a multipart upload on S3): a 3.3M-image manifest is ~0.9 GB.
    await this.store.putStream(
      keys.manifest(this.opts.dataset),
      createReadStream(path.join(this.tmpDir, "manifest.jsonl")),
      { contentType: "application/x-ndjson" },
    );
    await putJson(this.store, keys.datasetInfo(this.opts.dataset), this.info);
    return this.summary;
  }

  async dispose(): Promise<void> {
    this.manifest.destroy();
    await fs.rm(this.tmpDir, { recursive: true, force: true });
  }

  private async flushShard(ids: string[]): Promise<void> {
    const { dataset } = this.opts;
    const views = ids.map((id) => this.viewsById.get(id) ?? 0);
    const augmented = views.some((v) => v > 0);
    const shardId = shardIdFor(
      dataset,
      ids,
      augmented ? { recipe: DEFAULT_AUGMENT_RECIPE, views } : undefined,
    );
    this.info.shards.push(shardId);
    this.summary.shards++;
    const counts: [number, number, number] = [0, 0, 0];
    const list: ShardList = {
      dataset,
      shardId,
      images: ids.map((id, i) => {
        const { key, file, split, captions } = this.pendingById.get(id)!;
        counts[SPLIT_INDEX[split]]++;
        return { id, key, file, split, captions, ...(views[i]! > 0 ? { views: views[i] } : {}) };
      }),
      ...(augmented ? { recipe: DEFAULT_AUGMENT_RECIPE } : {}),
    };
    (this.info.shardSplits ??= []).push(counts);
    for (const id of ids) {
      this.pendingById.delete(id);
      this.viewsById.delete(id);
    }
    const shardKey = keys.shardList(dataset, shardId);
    await putJson(this.store, shardKey, list);
    const { encoderId } = this.opts;
    if (encoderId && (await this.store.head(keys.featureIndex(encoderId, dataset, shardId)))) {
      this.summary.shardsAlreadyDone++;
      return;
    }
    const jobId = featuresJobId(dataset, shardId);
    const existing = await this.queue.getJob(jobId);
    if (existing && !(await existing.isFailed())) {
      this.summary.shardsAlreadyQueued++;
      return;
    }
    if (existing) await existing.remove();
    const data: JobInput<"features"> = { dataset, shardId, shardKey };
    await this.queue.add("shard", data, { jobId });
    this.summary.shardsEnqueued++;
  }
}
