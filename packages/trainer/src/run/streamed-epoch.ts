/**
 * Training and validation fed from the shard stream (data/shard-stream.ts): a window of a few shards is
 * transformed, tokenised and trained on, while the next shards are read. Nothing here holds more than a
 * window (+ prefetch) of feature vectors; what grows with a split is named where it is kept.
 *
 * Data order is a pure function of (seed, epoch, windowShards): the shard order and the rows of each
 * window come from the stream's seeded shuffle, the batches inside a window from trainEpoch's, seeded
 * with the window's position. A run resumed at epoch e trains on the same batches as a straight one.
 */
import type { Split } from "@capflow/common";
import {
  applyFeatureTransform,
  captionRows,
  cleanCaption,
  IDENTITY_TRANSFORM,
  type CaptionDecoder,
  type CaptionModel,
  type FeatureTransform,
  type Vocabulary,
} from "@capflow/ml";
import { toCaptionSet } from "../data/caption-set.ts";
import type { DatasetScan } from "../data/scan-shards.ts";
import { streamWindows, type ShardSource, type ShardWindow } from "../data/shard-stream.ts";
import { evaluateLossSums, trainEpoch, type EpochResult, type TrainMethod } from "../train/index.ts";

/** Where a run's rows come from and how many shards it holds at once. */
export interface StreamedData {
  /** A shard's images with a vector: validation, test and the retrieval index read these. */
  source: ShardSource;
  /**
   * A shard's training rows (default `source`). A source may return more rows than the shard has
   * images (e.g. augmented views of an image, each row with its image's captions): training takes
   * every row it is given; the index, validation and test never see them.
   */
  trainSource?: ShardSource;
  scan: DatasetScan;
  windowShards: number;
  prefetchShards?: number;
}

/** What turns a window's rows into the model's input. */
export interface WindowEncoding {
  transform: FeatureTransform;
  vocab: Vocabulary;
  maxLength: number;
  clean: { lettersOnly?: boolean };
}

/**
 * The windows of one split. Training windows are shuffled with (seed, epoch); every other pass keeps
 * the dataset's shard order and row order, so its results come out in the same order every time.
 */
export function splitWindows(
  data: StreamedData,
  split: Split,
  opts: { shuffle?: { seed: number; epoch: number } } = {},
): AsyncGenerator<ShardWindow> {
  const source = split === "train" && opts.shuffle ? (data.trainSource ?? data.source) : data.source;
  return streamWindows(source, data.scan.shardsWith[split], {
    windowShards: data.windowShards,
    prefetchShards: data.prefetchShards,
    split,
    shuffle: opts.shuffle,
  });
}

/** Cleaned token lists of each image's captions, in window order. */
export function cleanedCaptions(window: ShardWindow, clean: { lettersOnly?: boolean }): string[][][] {
  return window.images.map((img) => img.captions.map((c) => cleanCaption(c, clean)));
}

function encodeWindow(window: ShardWindow, enc: WindowEncoding) {
  const x = applyFeatureTransform(enc.transform, window.features);
  const cleaned = cleanedCaptions(window, enc.clean);
  return { x, cleaned, set: toCaptionSet(x, window.dim, cleaned, enc.vocab, enc.maxLength) };
}

/** A window's batch-order seed: distinct per window, fixed per (seed, window). */
const windowSeed = (seed: number, window: number) => (seed + Math.imul(window + 1, 0x9e3779b1)) | 0;

export interface StreamedEpochOptions {
  method: TrainMethod;
  batchSize: number;
  seed: number;
  /** 0-based. */
  epoch: number;
  /**
   * The learning rate at `progress` ∈ [0, 1) through the epoch. Progress counts windows (and batches
   * within one), so it is known before a window is read and does not move when a source adds rows.
   */
  learningRateAt?: (progress: number) => number;
  /** Stop after this many batches (benchmarks measure a slice of an epoch). */
  maxBatches?: number;
  signal?: AbortSignal;
}

/** One epoch over the training split, a window at a time. */
export async function trainStreamedEpoch(
  model: CaptionModel,
  data: StreamedData,
  enc: WindowEncoding,
  opts: StreamedEpochOptions,
): Promise<EpochResult> {
  const windows = Math.ceil(data.scan.shardsWith.train.length / Math.max(1, data.windowShards));
  const total = { weighted: 0, tokens: 0, batches: 0, captions: 0 };
  const stream = splitWindows(data, "train", { shuffle: { seed: opts.seed, epoch: opts.epoch } });
  for await (const window of stream) {
    opts.signal?.throwIfAborted();
    const { set } = encodeWindow(window, enc);
    const { learningRateAt } = opts;
    const r = await trainEpoch(model, set, {
      method: opts.method,
      batchSize: opts.batchSize,
      seed: windowSeed(opts.seed, window.index),
      epoch: opts.epoch,
      maxBatches: opts.maxBatches === undefined ? undefined : opts.maxBatches - total.batches,
      learningRateAt: learningRateAt && ((b, n) => learningRateAt((window.index + b / n) / windows)),
    });
    if (r.tokens > 0) total.weighted += r.loss * r.tokens;
    total.tokens += r.tokens;
    total.batches += r.batches;
    total.captions += r.captions;
    if (opts.maxBatches !== undefined && total.batches >= opts.maxBatches) break;
  }
  return {
    loss: total.tokens ? total.weighted / total.tokens : NaN,
    batches: total.batches,
    captions: total.captions,
    tokens: total.tokens,
  };
}

export interface Validation {
  loss: number;
  /** Greedy caption of each validation image, in dataset order. */
  hypotheses: string[];
  /** Its cleaned references. Corpus BLEU and CIDEr-D need every image's: O(validation split) text. */
  references: string[][][];
}

/** Loss and greedy captions of the validation split, a window at a time. */
export async function validateStreamed(
  model: CaptionModel,
  decoder: CaptionDecoder,
  data: StreamedData,
  enc: WindowEncoding,
  opts: { signal?: AbortSignal; maxWindows?: number } = {},
): Promise<Validation> {
  const out: Validation = { loss: NaN, hypotheses: [], references: [] };
  let weighted = 0;
  let tokens = 0;
  let seen = 0;
  for await (const window of splitWindows(data, "val")) {
    opts.signal?.throwIfAborted();
    const { x, cleaned, set } = encodeWindow(window, enc);
    const sums = evaluateLossSums(model, set);
    weighted += sums.weighted;
    tokens += sums.tokens;
    // Greedy on the already transformed features: cheap enough for every epoch.
    const rows = await captionRows(
      { decoder, vocab: enc.vocab, transform: IDENTITY_TRANSFORM },
      x,
      window.images.length,
      {
        method: "greedy",
      },
    );
    out.hypotheses.push(...rows.map((r) => r.caption));
    out.references.push(...cleaned);
    if (++seen >= (opts.maxWindows ?? Infinity)) break;
  }
  out.loss = tokens ? weighted / tokens : NaN;
  return out;
}
