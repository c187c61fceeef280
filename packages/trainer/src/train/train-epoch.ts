/**
 * One epoch over in-memory captions, for either training method. The streaming of shards, checkpoints
 * and resumption live elsewhere; this is the plain decision part (order, batching) plus the loop.
 *
 * Order is a pure function of (seed, epoch), so a run resumed at epoch e sees the same batches as an
 * uninterrupted one.
 */
import {
  captionLength,
  numCaptions,
  prefixBatch,
  prefixSamples,
  teacherBatch,
  type CaptionModel,
  type CaptionSet,
  type TrainBatch,
} from "@capflow/ml";

export type TrainMethod = "teacher" | "prefix";

export interface TrainEpochOptions {
  method: TrainMethod;
  /** Captions per batch (teacher) or prefix samples per batch (prefix). */
  batchSize: number;
  seed: number;
  epoch: number;
  /**
   * Teacher forcing only: group captions of similar length so that each batch is trimmed to its own
   * longest caption. Trimming the padded length 33 → 20 took 55–60 to 87 captions/s (docs/architecture.md, "Compute backend").
   */
  bucketByLength?: boolean;
  /** Only the captions with these indices (default: all). */
  captions?: readonly number[];
  /** Stop after this many batches (benchmarks measure a slice of an epoch). */
  maxBatches?: number;
  /** The learning rate for batch `batch` of `batches` (lr-schedule.ts); default: the optimizer's own. */
  learningRateAt?: (batch: number, batches: number) => number;
  onBatch?: (info: { batch: number; batches: number; loss: number }) => void;
}

export interface EpochResult {
  /** Mean per-token cross-entropy over the epoch (weighted by tokens). */
  loss: number;
  batches: number;
  /** Captions covered (whole captions for teacher; captions whose prefixes were all seen, for prefix). */
  captions: number;
  /** Predicted tokens (= prefix samples). */
  tokens: number;
}

/** mulberry32: a small, fast, seedable PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates with a PRNG derived from (seed, epoch). Returns a new array. */
export function shuffle<T>(items: readonly T[], seed: number, epoch: number): T[] {
  const out = [...items];
  const rand = rng(Math.imul(seed ^ 0x5bd1e995, 31) + Math.imul(epoch + 1, 0x27d4eb2f));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Batches of caption indices: shuffled, then (if bucketing) sorted by length inside pools of 50 batches
 * so that each batch holds similar lengths while the epoch stays random; batch order shuffled again.
 */
export function teacherBatches(
  data: CaptionSet,
  captions: readonly number[],
  batchSize: number,
  seed: number,
  epoch: number,
  bucket: boolean,
): number[][] {
  const order = shuffle(captions, seed, epoch);
  if (bucket) {
    const pool = batchSize * 50;
    for (let start = 0; start < order.length; start += pool) {
      const slice = order
        .slice(start, start + pool)
        .sort((a, b) => captionLength(data, a) - captionLength(data, b) || a - b);
      order.splice(start, slice.length, ...slice);
    }
  }
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return bucket ? shuffle(batches, seed + 1, epoch) : batches;
}

function batchesFor(
  data: CaptionSet,
  maxLength: number,
  opts: TrainEpochOptions,
): { make: (i: number) => TrainBatch; count: number; captions: number } {
  const captions = opts.captions ?? [...Array(numCaptions(data)).keys()];
  if (opts.method === "teacher") {
    const groups = teacherBatches(
      data,
      captions,
      opts.batchSize,
      opts.seed,
      opts.epoch,
      opts.bucketByLength ?? true,
    );
    return { make: (i) => teacherBatch(data, groups[i]!), count: groups.length, captions: captions.length };
  }
  // The tutorial's method: every (prefix → next word) pair is one sample, shuffled across captions.
  const samples = shuffle(prefixSamples(data, captions), opts.seed, opts.epoch);
  const count = Math.ceil(samples.length / opts.batchSize);
  return {
    make: (i) => prefixBatch(data, samples.slice(i * opts.batchSize, (i + 1) * opts.batchSize), maxLength),
    count,
    captions: captions.length,
  };
}

/**
 * Train `model` for one epoch over `data`; returns the epoch's mean training loss. Yields to the event
 * loop after every batch: a whole epoch of synchronous tensor work would starve BullMQ's lock renewal
 * and get a healthy run marked stalled and started twice.
 */
export async function trainEpoch(
  model: CaptionModel,
  data: CaptionSet,
  opts: TrainEpochOptions,
): Promise<EpochResult> {
  const plan = batchesFor(data, model.config.maxLength, opts);
  const count = Math.min(plan.count, opts.maxBatches ?? Infinity);
  let weighted = 0;
  let tokens = 0;
  for (let i = 0; i < count; i++) {
    const batch = plan.make(i);
    const n = tokenCount(batch);
    if (opts.learningRateAt) model.setLearningRate(opts.learningRateAt(i, plan.count));
    const loss = model.trainBatch(batch);
    weighted += loss * n;
    tokens += n;
    opts.onBatch?.({ batch: i, batches: count, loss });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return {
    loss: tokens ? weighted / tokens : NaN,
    batches: count,
    captions: count === plan.count ? plan.captions : Math.round((plan.captions * count) / plan.count),
    tokens,
  };
}

/** Mean per-token cross-entropy of `model` on `data` (no dropout, no update), teacher-forced. */
export function evaluateLoss(model: CaptionModel, data: CaptionSet, batchSize = 128): number {
  const { weighted, tokens } = evaluateLossSums(model, data, batchSize);
  return tokens ? weighted / tokens : NaN;
}

/** Token-weighted loss sum and token count: what a loss over many windows adds up. */
export function evaluateLossSums(
  model: CaptionModel,
  data: CaptionSet,
  batchSize = 128,
): { weighted: number; tokens: number } {
  const n = numCaptions(data);
  const order = [...Array(n).keys()].sort((a, b) => captionLength(data, a) - captionLength(data, b));
  let weighted = 0;
  let tokens = 0;
  for (let i = 0; i < n; i += batchSize) {
    const { loss, count } = model.evaluate(teacherBatch(data, order.slice(i, i + batchSize)));
    weighted += loss * count;
    tokens += count;
  }
  return { weighted, tokens };
}

function tokenCount(batch: TrainBatch): number {
  if (batch.method === "prefix") return batch.targets.reduce((n, t) => n + (t !== 0 ? 1 : 0), 0);
  let n = 0;
  for (let i = 0; i < batch.tokens.length; i++) if (i % batch.width !== 0 && batch.tokens[i] !== 0) n++;
  return n;
}
