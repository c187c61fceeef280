import {
  DEFAULT_DECODE,
  keys,
  metrics,
  putJson,
  TrainingJob,
  type JobInput,
  type Logger,
  type ObjectStore,
} from "@capflow/common";
import {
  applyFeatureTransform,
  calibrate,
  CaptionIndex,
  captionRows,
  CaptionMerge,
  createCaptionModel,
  featureTransformFromJSON,
  fitFeatureTransform,
  publishModel,
  saveCaptionIndex,
  loadServingDecoder,
  structuredLogger,
  tfjsDecoder,
  vocabularyFromCounts,
  vocabularyFromJSON,
  type Calibration,
  type FeatureTransform,
  type Tf,
  type Vocabulary,
} from "@capflow/ml";
import {
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type EpochMetrics,
} from "../checkpoint/checkpoint-store.ts";
import { loadGloveEmbeddings } from "../data/glove.ts";
import { scanShards } from "../data/scan-shards.ts";
import { storeShardSource } from "../data/shard-stream.ts";
import { exactMatch, scoreWithIntervals, type ScoresWithIntervals } from "../eval/bootstrap.ts";
import { DEFAULT_SCHEDULE, learningRate, LrSchedule } from "../train/lr-schedule.ts";
import { scoreCaptions } from "../eval/evaluate.ts";
import {
  cleanedCaptions,
  splitWindows,
  trainStreamedEpoch,
  validateStreamed,
  type StreamedData,
  type WindowEncoding,
} from "./streamed-epoch.ts";
import { captionSplit, SYSTEMS, type System, type TestReport } from "../eval/test-report.ts";

const epochGauge = metrics.gauge("capflow_trainer_epoch", "Epochs completed by the current run");
const lossGauge = metrics.gauge("capflow_trainer_loss", "Mean per-token cross-entropy of the last epoch", [
  "split",
]);
const scoreGauge = metrics.gauge("capflow_trainer_val_score", "Validation caption scores of the last epoch", [
  "metric",
]);
const epochSeconds = metrics.histogram(
  "capflow_trainer_epoch_seconds",
  "Wall time per epoch",
  [],
  [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
);
const checkpointTime = metrics.gauge(
  "capflow_trainer_last_checkpoint_timestamp_seconds",
  "Unix time of the newest committed checkpoint",
);

export type TrainingSpec = JobInput<"training">;

export interface RunProgress {
  epoch: number;
  epochs: number;
  trainLoss?: number;
  valLoss?: number;
  cider?: number;
  etaSeconds?: number;
}

export interface RunResult {
  runId: string;
  epochs: number;
  resumedFrom: number;
  best: { epoch: number; cider: number };
  history: EpochMetrics[];
  test: TestReport;
  published?: string;
}

export interface RunDeps {
  store: ObjectStore;
  tf: Tf;
  log: Logger;
  signal?: AbortSignal;
  onProgress?: (p: RunProgress) => void | Promise<void>;
}

/**
 * One training run: resumes from the newest complete checkpoint, trains and evaluates every epoch,
 * checkpoints every epoch, then reports the test split against the retrieval baseline and publishes
 * the epoch with the best validation CIDEr-D.
 *
 * Feature vectors are streamed a window of `windowShards` shards at a time (streamed-epoch.ts); what
 * still grows with the dataset is the retrieval index (it ships every training image's features by
 * design), the validation captions (corpus BLEU and CIDEr-D) and the test report's rows.
 */
export async function trainRun(deps: RunDeps, specInput: TrainingSpec): Promise<RunResult> {
  const { store, tf, log } = deps;
  const spec = TrainingJob.parse(specInput);
  const schedule = LrSchedule.parse(spec.schedule ?? DEFAULT_SCHEDULE);
  const clean = { lettersOnly: spec.lettersOnly };
  const scan = await scanShards(store, spec.dataset, spec.encoderId, clean);
  if (scan.images.train === 0)
    throw new Error(`dataset "${spec.dataset}" has no training images with features`);
  // Augmented views are extra training rows with their source image's captions (training only: the
  // feature transform, the index, validation and test see the clean images alone).
  const views = (spec.augmentedViews ?? true) && scan.trainViews > 0;
  const data: StreamedData = {
    source: storeShardSource(store, spec.dataset, spec.encoderId),
    trainSource: views ? storeShardSource(store, spec.dataset, spec.encoderId, { views }) : undefined,
    scan,
    windowShards: spec.windowShards,
    prefetchShards: spec.prefetchShards ?? Math.min(spec.windowShards, 8),
  };

  const latest = await latestCheckpoint(store, spec.runId, (epoch, why, reason) =>
    log.warn({ epoch, reason, why }, "skipping a checkpoint that does not load: resuming from an older one"),
  );
  const vocab = latest
    ? vocabularyFromJSON(latest.vocab)
    : vocabularyFromCounts(scan.trainWords, { minCount: spec.minWordCount });
  // The tutorial's max_length: the longest training caption with `<start>`/`<end>`, capped at 40.
  const maxLength = latest
    ? Number((latest.config.model as { maxLength: number }).maxLength)
    : (spec.maxLength ?? Math.min(40, scan.longestTrainCaption + 2));
  let pretrainedEmbeddings: Float32Array<ArrayBuffer> | undefined;
  if (spec.wordVectorsKey) {
    const dim = Number(spec.model.embedDim ?? 200);
    const vectors = await loadGloveEmbeddings(await store.getStream(spec.wordVectorsKey), vocab, dim);
    pretrainedEmbeddings = vectors.matrix;
    log.info({ found: vectors.found, vocab: vocab.size, dim }, "frozen word vectors loaded");
  }
  // New runs take the residual merge (caption-model.ts says why); a resumed run keeps what its
  // checkpoint was trained as: both have the same weights, so nothing else would notice a change.
  const merge = CaptionMerge.parse(
    latest
      ? ((latest.config.model as { merge?: unknown }).merge ?? "tutorial")
      : (spec.model.merge ?? "residual"),
  );
  const modelConfig = {
    ...spec.model,
    merge,
    vocabSize: vocab.size,
    maxLength,
    seed: spec.seed,
    learningRate: spec.learningRate,
    pretrainedEmbeddings,
  };
  // Fitted once, on a bounded sample: the first training shard (sqrt-l2 needs no statistic but the
  // dimension, which this checks). A resumed run reads it back so its features match.
  const transform: FeatureTransform = latest
    ? featureTransformFromJSON(latest.config.featureTransform)
    : await fitOnFirstShard(data, spec.featureTransform);
  const enc: WindowEncoding = { transform, vocab, maxLength, clean };
  const model = createCaptionModel(tf, modelConfig);
  try {
    let history: EpochMetrics[] = [];
    if (latest) {
      model.setWeights(latest.weights);
      await model.setOptimizerState(latest.optimizer);
      history = latest.history;
      log.info({ runId: spec.runId, epoch: latest.epoch }, "resuming from checkpoint");
    }
    const resumedFrom = latest?.epoch ?? 0;
    const decoder = tfjsDecoder(model);
    const method = spec.method === "prefix" ? "prefix" : "teacher";
    log.info(
      {
        runId: spec.runId,
        ...scan.images,
        trainViews: views ? scan.trainViews : 0,
        shards: scan.shardsWith.train.length,
        windowShards: spec.windowShards,
        vocab: vocab.size,
        maxLength,
        method,
        transform: transform.kind,
        schedule,
      },
      "training data loaded",
    );

    for (let epoch = resumedFrom + 1; epoch <= spec.epochs; epoch++) {
      deps.signal?.throwIfAborted();
      const started = performance.now();
      // Epochs are 0-based for the shuffle: order is a pure function of (seed, epoch index).
      const valLosses = history.map((h) => h.valLoss);
      const train = await trainStreamedEpoch(model, data, enc, {
        method,
        batchSize: spec.batchSize,
        seed: spec.seed,
        epoch: epoch - 1,
        signal: deps.signal,
        learningRateAt: (progress) =>
          learningRate(spec.learningRate, schedule, {
            at: epoch - 1 + progress,
            epochs: spec.epochs,
            valLosses,
          }),
      });
      const seconds = (performance.now() - started) / 1000;
      const val = await validateStreamed(model, decoder, data, enc, { signal: deps.signal });
      const valLoss = val.loss;
      const scores =
        val.hypotheses.length > 0
          ? scoreCaptions(val.hypotheses, val.references)
          : { bleu1: 0, bleu2: 0, bleu3: 0, bleu4: 0, cider: 0 };
      const row: EpochMetrics = {
        epoch,
        trainLoss: train.loss,
        valLoss,
        ...scores,
        seconds,
        captionsPerSecond: train.captions / seconds,
      };
      history = [...history, row];
      await saveCheckpoint(store, {
        runId: spec.runId,
        epoch,
        weights: model.getWeights(),
        optimizer: await model.getOptimizerState(),
        vocab: vocab.toJSON(),
        config: {
          spec,
          model: { ...model.config, pretrainedEmbeddings: undefined },
          featureTransform: transform,
        },
        history,
      });
      epochGauge.set(epoch);
      lossGauge.set({ split: "train" }, train.loss);
      lossGauge.set({ split: "val" }, valLoss);
      for (const [metric, value] of Object.entries(scores)) scoreGauge.set({ metric }, value);
      epochSeconds.observe(seconds);
      checkpointTime.set(Date.now() / 1000);
      log.info({ runId: spec.runId, ...row }, "epoch done");
      await deps.onProgress?.({
        epoch,
        epochs: spec.epochs,
        trainLoss: train.loss,
        valLoss,
        cider: scores.cider,
        etaSeconds: seconds * (spec.epochs - epoch),
      });
    }

    const best = selectEpoch(history, spec.select);
    if (best.epoch !== history.at(-1)?.epoch) {
      const ckpt = await loadCheckpoint(store, spec.runId, best.epoch);
      model.setWeights(ckpt.weights);
    }
    // The training features' index ships with the model: re-ranking and confidence in the workers.
    const index = await buildIndex(data, enc);
    // The report decodes as the caption workers will serve the model: on ONNX Runtime (3-4x the
    // captions/s of tfjs-wasm here), with the same fallback.
    const served = await loadServingDecoder(model, { logger: structuredLogger(log) });
    const ctx = { decoder: served, vocab, transform, index };
    const indexKey = `${keys.runPrefix(spec.runId)}index/`;
    let test: TestReport;
    try {
      const val = await calibrateOn(ctx, data, clean);
      index.calibration = val.calibration;
      await saveCaptionIndex(store, indexKey, index, transform);
      test = await testReport(ctx, data, clean, val.similarities);
    } finally {
      await served.dispose();
    }
    const result: RunResult = {
      runId: spec.runId,
      epochs: spec.epochs,
      resumedFrom,
      best: { epoch: best.epoch, cider: best.cider },
      history,
      test,
    };
    if (spec.publishAs) result.published = keys.modelPointer(spec.publishAs);
    // Written before the pointer moves, and already saying where it will point: the report of a
    // published run never says "not published" (issue 18).
    await putJson(store, `${keys.runPrefix(spec.runId)}result.json`, result);
    if (spec.publishAs) {
      await publishModel(store, spec.publishAs, {
        runId: spec.runId,
        epoch: best.epoch,
        encoderId: spec.encoderId,
        cider: best.cider,
        index: indexKey,
      });
      log.info({ model: spec.publishAs, runId: spec.runId, epoch: best.epoch }, "model published");
    }
    return result;
  } finally {
    model.dispose();
  }
}

/**
 * The published epoch. Validation CIDEr-D of one epoch swings by ±0.2 on 300 images (issue 13), so the
 * default takes the best mean of each epoch and its neighbours rather than the single best epoch.
 */
export function selectEpoch(
  history: readonly EpochMetrics[],
  rule: "smoothed-cider" | "val-loss" | "cider",
): EpochMetrics {
  const value = (i: number): number => {
    const h = history[i]!;
    if (rule === "val-loss") return Number.isNaN(h.valLoss) ? -Infinity : -h.valLoss;
    if (rule === "cider") return h.cider;
    const window = history.slice(Math.max(0, i - 1), i + 2);
    return window.reduce((s, w) => s + w.cider, 0) / window.length;
  };
  let best = 0;
  for (let i = 1; i < history.length; i++) if (value(i) >= value(best)) best = i;
  return history[best]!;
}

type Ctx = Parameters<typeof captionRows>[0];

async function fitOnFirstShard(
  data: StreamedData,
  kind: FeatureTransform["kind"],
): Promise<FeatureTransform> {
  const first = await data.source(data.scan.shardsWith.train[0]!);
  return fitFeatureTransform(kind, first.vectors, first.dim);
}

/**
 * The retrieval index of every training image, filled a window at a time into one matrix: O(training
 * split) by design (it ships with the model), and held twice while CaptionIndex makes its unit rows.
 */
async function buildIndex(data: StreamedData, enc: WindowEncoding): Promise<CaptionIndex> {
  let features = new Float32Array(0);
  let dim = 0;
  let rows = 0;
  const captions: string[][] = [];
  for await (const window of splitWindows(data, "train")) {
    if (rows === 0) {
      dim = window.dim;
      features = new Float32Array(data.scan.images.train * dim);
    }
    features.set(applyFeatureTransform(enc.transform, window.features), rows * dim);
    rows += window.images.length;
    for (const caps of cleanedCaptions(window, enc.clean))
      captions.push(caps.map((c) => c.join(" ")).filter(Boolean));
  }
  return new CaptionIndex(features.subarray(0, rows * dim), dim, captions);
}

/**
 * Confidence curve and out-of-domain threshold from the validation split, with the default decoding.
 * Also returns each validation image's similarity to its nearest training image (the test report's
 * out-of-domain share), so the split is decoded once.
 */
async function calibrateOn(
  ctx: Ctx & { index: CaptionIndex },
  data: StreamedData,
  clean: { lettersOnly: boolean },
): Promise<{ calibration: Calibration; similarities: number[] }> {
  const similarities: number[] = [];
  const correct: boolean[] = [];
  for await (const window of splitWindows(data, "val")) {
    const refs = cleanedCaptions(window, clean);
    const out = await captionRows(ctx, window.features, window.images.length, DEFAULT_DECODE);
    out.forEach((o, i) => {
      similarities.push(o.similarity);
      correct.push(exactMatch(o.caption ? o.caption.split(" ") : [], refs[i]!));
    });
  }
  if (similarities.length === 0) return { calibration: ctx.index.calibration, similarities };
  return { calibration: calibrate(similarities, correct), similarities };
}

async function testReport(
  ctx: Ctx & { index: CaptionIndex; vocab: Vocabulary },
  data: StreamedData,
  clean: { lettersOnly: boolean },
  valSimilarities: readonly number[],
): Promise<TestReport> {
  const { captions, refs, samples } = await captionSplit(ctx, data, "test", {
    decode: DEFAULT_DECODE,
    lettersOnly: clean.lettersOnly,
  });
  const share = (flags: boolean[]) => (flags.length ? flags.filter(Boolean).length / flags.length : 0);
  return {
    images: samples.length,
    decode: DEFAULT_DECODE,
    scores: Object.fromEntries(SYSTEMS.map((s) => [s, scoreWithIntervals(captions[s], refs)])) as Record<
      System,
      ScoresWithIntervals
    >,
    calibration: ctx.index.calibration,
    outOfDomain: {
      val: share(valSimilarities.map((s) => ctx.index.outOfDomain(s))),
      test: share(samples.map((s) => s.outOfDomain)),
    },
    samples,
  };
}
