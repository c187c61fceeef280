import { z } from "zod";
import type { JobsOptions, WorkerOptions } from "bullmq";
import { DatasetName, ModelName } from "../names.ts";

/**
 * The job catalog: for every queue, the payload schema and the default options. Producers are typed
 * from it at compile time, workers `safeParse` on receipt. Payloads carry ids and store keys only:
 * job data sits in Redis in clear text and must stay small.
 */
const Id = z.string().regex(/^[\w.-]{1,128}$/, "ids are 1-128 of [A-Za-z0-9_.-]");
const StoreKey = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (k) => !k.startsWith("/") && !k.split("/").includes(".."),
    "a store key is relative and has no '..'",
  );

export const FeaturesJob = z.object({
  dataset: DatasetName,
  shardId: Id,
  /** Store key of the shard's image list (`datasets/<name>/shards/<shardId>.json`). */
  shardKey: StoreKey,
});

/** The dataset formats ingest reads (its readers live in @capflow/ingest `datasets/`). */
export const DATASET_FORMATS = [
  "flickr8k-csv",
  "flickr8k-token",
  "flickr30k",
  "coco",
  "jsonl-folder",
] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

/**
 * One range of a dataset's records for an ingest worker (queue `ingest`, `capflow ingest --distribute`):
 * records `[start, end)` in the reader's order, their images stored by content and the range's part
 * (`ingest/<runId>/part-<range>.json`) written for the command that assembles the manifest. The
 * folder is read by path: every ingest worker must see the dataset at that path (a shared mount).
 */
export const IngestRangeJob = z.object({
  runId: Id,
  dataset: DatasetName,
  format: z.enum(DATASET_FORMATS),
  dir: z
    .string()
    .min(1)
    .max(4096)
    .refine((d) => d.startsWith("/"), "the dataset folder is an absolute path"),
  range: z.number().int().min(0),
  start: z.number().int().min(0),
  end: z.number().int().min(1),
  /** sha256 of the range's records (image, captions, split), one per line, as the command enumerated
   *  them: a worker that reads other records (the caption file changed since) fails the range instead
   *  of mixing data. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  /** Where record `start` begins in the caption file (its byte offset, and that line's number so that
   *  issues name the file's lines): the worker reads from there, not from the file's beginning. Absent
   *  for a format that cannot be read from an offset (COCO, one JSON document): the worker then reads
   *  from the beginning and skips `start` records. */
  from: z.object({ byte: z.number().int().min(0), line: z.number().int().min(1) }).optional(),
});

export const DECODE_METHODS = ["beam", "greedy", "rerank"] as const;
export type DecodeMethod = (typeof DECODE_METHODS)[number];

/**
 * How captions are decoded (ml's caption-rows.ts runs it). Beam search with a length penalty is the
 * default: without one beams favour short captions (issue 13; docs/quality.md has the figures).
 * `rerank`: the captions of the `rerankK` nearest training images, ranked by the model.
 */
export const DecodeChoice = z.object({
  method: z.enum(DECODE_METHODS).default("beam"),
  beamWidth: z.number().int().min(1).max(20).default(3),
  /** Beams are ranked by logProb / length^lengthPenalty. */
  lengthPenalty: z.number().min(0).max(3).default(1),
  /** Training images whose captions are candidates, for method=rerank. */
  rerankK: z.number().int().min(1).max(100).default(10),
  maxLength: z.number().int().min(2).max(100).optional(),
});
export type DecodeChoice = z.output<typeof DecodeChoice>;
export type DecodeChoiceInput = z.input<typeof DecodeChoice>;
export const DEFAULT_DECODE: DecodeChoice = DecodeChoice.parse({});
export const DecodeOptions = DecodeChoice;

export const TrainingJob = z.object({
  runId: Id,
  dataset: DatasetName,
  encoderId: Id,
  method: z.enum(["teacher-forcing", "prefix"]).default("teacher-forcing"),
  epochs: z.number().int().min(1).max(10_000),
  seed: z.number().int().default(1),
  batchSize: z.number().int().min(1).max(4096).default(64),
  learningRate: z.number().positive().max(1).default(0.001),
  minWordCount: z.number().int().min(1).default(1),
  maxLength: z.number().int().min(4).max(100).optional(),
  model: z.record(z.string(), z.unknown()).default({}),
  /** Optional frozen word vectors (GloVe text format) in the store; words it lacks start at zero. */
  wordVectorsKey: StoreKey.optional(),
  publishAs: ModelName.optional(),
  beamWidth: z.number().int().min(1).max(20).default(3),
  /** Feature transform fitted on the training split (feature-transform.ts). */
  featureTransform: z.enum(["sqrt-l2", "none"]).default("sqrt-l2"),
  /** Learning-rate schedule (the trainer's lr-schedule.ts); default cosine with a one-epoch warm-up. */
  schedule: z.record(z.string(), z.unknown()).optional(),
  /** Which epoch is published: best 3-epoch mean of validation CIDEr-D (default), lowest val loss, or best CIDEr-D. */
  select: z.enum(["smoothed-cider", "val-loss", "cider"]).default("smoothed-cider"),
  /** The tutorial's isalpha rule: drop tokens with digits. */
  lettersOnly: z.boolean().default(false),
  /**
   * Feature shards the trainer holds at once: their rows are shuffled together (memory grows with it,
   * not with the dataset). Part of the run's data order: a resumed run must keep it. 64 (about 64 MB
   * of features at the default shard size, more with augmented views): batches drawn from 4 shards
   * at a time cost the demo's model 0.18 test CIDEr-D and 6 points of exact match against 64, which
   * holds the demo's whole dataset (docs/quality.md).
   */
  windowShards: z.number().int().min(1).max(256).default(64),
  /** Shards read ahead while a window is trained on (default: `windowShards`, at most 8). */
  prefetchShards: z.number().int().min(0).max(256).optional(),
  /** Train on the training images' augmented views too, when the shards have them (default true). */
  augmentedViews: z.boolean().optional(),
});

/** One image, online: someone waits for the answer (queue `captions`). */
export const CaptionsJob = z.object({
  kind: z.literal("image"),
  requestId: Id,
  imageKey: StoreKey,
  model: ModelName.default("default"),
  decode: DecodeOptions.default(DEFAULT_DECODE),
});

/**
 * One shard of a bulk caption job (queue `caption-bulk`). Bulk work has its own queue, not a lower
 * priority in `captions`: priorities only order waiting jobs, so shards that a worker had already taken
 * held its slots and single requests waited for them to finish. Caption workers take a few shards at
 * a time (CAPFLOW_CAPTION_BULK_CONCURRENCY) next to their online slots.
 */
export const CaptionBulkJob = z.object({
  kind: z.literal("bulk-shard"),
  batchId: Id,
  dataset: DatasetName,
  shardId: Id,
  shardKey: StoreKey,
  /** Caption only the shard's images of this split (read from the shard list): work done = work asked. */
  split: z.enum(["train", "val", "test"]).optional(),
  model: ModelName.default("default"),
  decode: DecodeOptions.default(DEFAULT_DECODE),
});

/** What a caption job returns (the job's return value; bulk shards also write JSONL to the store). */
export interface CaptionResult {
  caption: string;
  /** Sum of the log-probabilities of the emitted words (higher is more confident). */
  logProb: number;
  /** Calibrated on validation: the probability that the caption names the image exactly (NaN: no index). */
  confidence: number;
  /** Cosine similarity of the image to the nearest training image (after the feature transform). */
  similarity: number;
  /** Unlike anything the model was trained on: do not trust the caption. */
  outOfDomain: boolean;
  modelVersion: string;
  method: DecodeMethod;
  /** Beam search only: every finished beam, best first (the first is `caption`). */
  alternatives?: CaptionAlternative[];
  timings: { queuedMs: number; decodeMs: number; encodeMs: number; totalMs: number };
}

export interface CaptionAlternative {
  caption: string;
  logProb: number;
  /** What the beams were ranked by: logProb / length^lengthPenalty. */
  score: number;
}

export interface BulkShardResult {
  shardId: string;
  captioned: number;
  failed: number;
  resultsKey: string;
}

/** One line of a bulk job's results JSONL. */
export interface BulkResultLine {
  id: string;
  key: string;
  file?: string;
  caption?: string;
  logProb?: number;
  confidence?: number;
  outOfDomain?: boolean;
  error?: { reason: string; message: string };
}

/** `captions/<batchId>/batch.json`: a bulk job as submitted. */
export interface CaptionBatch {
  batchId: string;
  dataset: string;
  split?: "train" | "val" | "test";
  model: string;
  shards: string[];
  images: number;
  createdAt: string;
  decode: DecodeChoiceInput;
}

/** Job ids are derived from content so that resubmitting is a no-op. */
export const featuresJobId = (dataset: string, shardId: string) => `features.${dataset}.${shardId}`;
export const ingestRangeJobId = (runId: string, range: number) => `ingest.${runId}.${range}`;
export const captionShardJobId = (batchId: string, shardId: string) => `caption.${batchId}.${shardId}`;

export const JobCatalog = {
  features: {
    schema: FeaturesJob,
    // A shard's bad images fail inside it (quarantine), so a retry only ever means infrastructure
    // trouble: a few with backoff are enough.
    options: {
      attempts: 5,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
      removeOnFail: { count: 50_000 },
    },
    worker: {
      // A worker process that dies mid-shard (native crash, OOM, SIGKILL) leaves its job stalled. The
      // feature worker then isolates the images that were in flight (feature-worker
      // crash-isolation.ts): one poison image costs 3 deaths (in a batch, then alone twice in a row)
      // before it is quarantined as `crashed_worker` and the shard completes on the 4th start.
      // BullMQ fails the job on the stall after `maxStalledCount`, so 3 is the least that lets one
      // poison image fail alone; a shard with two or more fails after its 4th death (no crash
      // loop), and `capflow reconcile` re-enqueues it with the isolation resumed from Redis.
      maxStalledCount: 3,
    },
  },
  ingest: {
    schema: IngestRangeJob,
    // A range rewrites the same objects when redone (images by content, its part by run and range):
    // retries are safe. The command waiting for the ranges re-adds one that retention removed.
    options: {
      attempts: 5,
      backoff: { type: "exponential", delay: 2_000 },
      removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
      removeOnFail: { count: 10_000, age: 7 * 24 * 3600 },
    },
  },
  training: {
    schema: TrainingJob,
    options: {
      attempts: 3,
      backoff: { type: "fixed", delay: 5_000 },
      removeOnComplete: { count: 1_000 },
      removeOnFail: { count: 1_000 },
    },
  },
  captions: {
    schema: CaptionsJob,
    options: {
      attempts: 3,
      backoff: { type: "exponential", delay: 500 },
      removeOnComplete: { count: 20_000, age: 24 * 3600 },
      removeOnFail: { count: 20_000 },
    },
  },
  "caption-bulk": {
    schema: CaptionBulkJob,
    // A shard rewrites the same results key when redone: retries are safe. Few and quick: a shard that
    // keeps failing is reported in the job's status and retried by the user (POST .../retry).
    // Kept as long as the batch's objects (CAPFLOW_CAPTION_BATCH_TTL_HOURS, default 7 days): after
    // that its status is a 404 anyway. Failed shards were kept by count only (50,000), never by age.
    options: {
      attempts: 3,
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
      removeOnFail: { count: 10_000, age: 7 * 24 * 3600 },
    },
  },
} as const satisfies Record<
  string,
  {
    schema: z.ZodType;
    options: JobsOptions;
    /** Options every worker of the queue shares (BullMQ applies the stalled-job ones per worker). */
    worker?: Pick<WorkerOptions, "maxStalledCount">;
  }
>;

export type QueueName = keyof typeof JobCatalog;
export const QUEUE_NAMES = Object.keys(JobCatalog) as QueueName[];
export type JobData<Q extends QueueName> = z.infer<(typeof JobCatalog)[Q]["schema"]>;
export type JobInput<Q extends QueueName> = z.input<(typeof JobCatalog)[Q]["schema"]>;
