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
  buildVocabulary,
  calibrate,
  CaptionIndex,
  captionRows,
  createCaptionModel,
  featureTransformFromJSON,
  fitFeatureTransform,
  IDENTITY_TRANSFORM,
  publishModel,
  saveCaptionIndex,
  tfjsDecoder,
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
import { maxCaptionLength, toCaptionSet } from "../data/caption-set.ts";
import { loadGloveEmbeddings } from "../data/glove.ts";
import { cleanedCaptions, loadSplits } from "../data/load-splits.ts";
import { exactMatch, scoreWithIntervals, type ScoresWithIntervals } from "../eval/bootstrap.ts";
import { evaluateLoss, trainEpoch } from "../train/index.ts";
import { DEFAULT_SCHEDULE, learningRate, LrSchedule } from "../train/lr-schedule.ts";
import { scoreCaptions } from "../eval/evaluate.ts";
import { sampleRows, SYSTEMS, type System, type TestReport } from "../eval/test-report.ts";

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
 */
export async function trainRun(deps: RunDeps, specInput: TrainingSpec): Promise<RunResult> {
  const { store, tf, log } = deps;
  const spec = TrainingJob.parse(specInput);
  const schedule = LrSchedule.parse(spec.schedule ?? DEFAULT_SCHEDULE);
  const splits = await loadSplits(store, spec.dataset, spec.encoderId);
  if (splits.train.ids.length === 0)
    throw new Error(`dataset "${spec.dataset}" has no training images with features`);
  const clean = { lettersOnly: spec.lettersOnly };
  const trainCleaned = cleanedCaptions(splits.train, clean);
  const valCleaned = cleanedCaptions(splits.val, clean);

  const latest = await latestCheckpoint(store, spec.runId, (epoch, why, reason) =>
    log.warn({ epoch, reason, why }, "skipping a checkpoint that does not load: resuming from an older one"),
  );
  const vocab = latest
    ? vocabularyFromJSON(latest.vocab)
    : buildVocabulary(trainCleaned.flat(), { minCount: spec.minWordCount });
  const maxLength = latest
    ? Number((latest.config.model as { maxLength: number }).maxLength)
    : (spec.maxLength ?? maxCaptionLength(trainCleaned));
  let pretrainedEmbeddings: Float32Array<ArrayBuffer> | undefined;
  if (spec.wordVectorsKey) {
    const dim = Number(spec.model.embedDim ?? 200);
    const vectors = await loadGloveEmbeddings(await store.getStream(spec.wordVectorsKey), vocab, dim);
    pretrainedEmbeddings = vectors.matrix;
    log.info({ found: vectors.found, vocab: vocab.size, dim }, "frozen word vectors loaded");
  }
  const modelConfig = {
    ...spec.model,
    vocabSize: vocab.size,
    maxLength,
    seed: spec.seed,
    learningRate: spec.learningRate,
    pretrainedEmbeddings,
  };
  // Fitted on the training split once; a resumed run reads it back so its features match.
  const transform: FeatureTransform = latest
    ? featureTransformFromJSON(latest.config.featureTransform)
    : fitFeatureTransform(spec.featureTransform, splits.train.features, splits.train.dim);
  const X = {
    train: applyFeatureTransform(transform, splits.train.features),
    val: applyFeatureTransform(transform, splits.val.features),
  };
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
    const trainSet = toCaptionSet(X.train, splits.train.dim, trainCleaned, vocab, maxLength);
    const valSet = toCaptionSet(X.val, splits.val.dim, valCleaned, vocab, maxLength);
    const decoder = tfjsDecoder(model);
    const method = spec.method === "prefix" ? "prefix" : "teacher";
    log.info(
      {
        runId: spec.runId,
        train: splits.train.ids.length,
        val: splits.val.ids.length,
        test: splits.test.ids.length,
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
      const train = await trainEpoch(model, trainSet, {
        method,
        batchSize: spec.batchSize,
        seed: spec.seed,
        epoch: epoch - 1,
        learningRateAt: (b, n) =>
          learningRate(spec.learningRate, schedule, {
            at: epoch - 1 + b / n,
            epochs: spec.epochs,
            valLosses,
          }),
      });
      const seconds = (performance.now() - started) / 1000;
      const valLoss = valSet.imageOf.length > 0 ? evaluateLoss(model, valSet) : NaN;
      // Greedy on the already transformed features: cheap enough for every epoch.
      const valCaptions = (
        splits.val.ids.length > 0
          ? await captionRows(
              { decoder, vocab, transform: IDENTITY_TRANSFORM },
              X.val,
              splits.val.ids.length,
              { method: "greedy" },
            )
          : []
      ).map((c) => c.caption);
      const scores =
        valCaptions.length > 0
          ? scoreCaptions(valCaptions, valCleaned)
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
    const index = new CaptionIndex(
      X.train,
      splits.train.dim,
      trainCleaned.map((caps) => caps.map((c) => c.join(" ")).filter(Boolean)),
    );
    const ctx = { decoder, vocab, transform, index };
    const calibration = await calibrateOn(ctx, splits.val, valCleaned);
    index.calibration = calibration;
    const indexKey = `${keys.runPrefix(spec.runId)}index/`;
    await saveCaptionIndex(store, indexKey, index, transform);
    const test = await testReport(ctx, splits, clean);
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

/** Confidence curve and out-of-domain threshold from the validation split, with the default decoding. */
async function calibrateOn(
  ctx: Ctx,
  val: Awaited<ReturnType<typeof loadSplits>>["val"],
  refs: string[][][],
): Promise<Calibration> {
  if (val.ids.length === 0) return ctx.index!.calibration;
  const out = await captionRows(ctx, val.features, val.ids.length, DEFAULT_DECODE);
  return calibrate(
    out.map((o) => o.similarity),
    out.map((o, i) => exactMatch(o.caption ? o.caption.split(" ") : [], refs[i]!)),
  );
}

async function testReport(
  ctx: Ctx & { index: CaptionIndex; vocab: Vocabulary },
  splits: Awaited<ReturnType<typeof loadSplits>>,
  clean: { lettersOnly: boolean },
): Promise<TestReport> {
  const { test, val } = splits;
  const refs = cleanedCaptions(test, clean);
  const n = test.ids.length;
  const model = n ? await captionRows(ctx, test.features, n, DEFAULT_DECODE) : [];
  const greedy = n ? await captionRows(ctx, test.features, n, { method: "greedy" }) : [];
  const rerank = n ? await captionRows(ctx, test.features, n, { method: "rerank" }) : [];
  // The floor to beat: each test image gets the first caption (its name) of its nearest training
  // image, by cosine similarity of the same transformed features the model sees.
  const nearest = ctx.index.nearest(applyFeatureTransform(ctx.transform, test.features), n, 1);
  const baseline = nearest.map((nb) => ctx.index.captions[nb[0]!.index]?.[0] ?? "");
  const captions: Record<System, string[]> = {
    model: model.map((c) => c.caption),
    greedy: greedy.map((c) => c.caption),
    rerank: rerank.map((c) => c.caption),
    baseline,
  };
  const valSims = val.ids.length
    ? ctx.index.nearest(applyFeatureTransform(ctx.transform, val.features), val.ids.length, 1)
    : [];
  const share = (flags: boolean[]) => (flags.length ? flags.filter(Boolean).length / flags.length : 0);
  return {
    images: n,
    decode: DEFAULT_DECODE,
    scores: Object.fromEntries(SYSTEMS.map((s) => [s, scoreWithIntervals(captions[s], refs)])) as Record<
      System,
      ScoresWithIntervals
    >,
    calibration: ctx.index.calibration,
    outOfDomain: {
      val: share(valSims.map((nb) => ctx.index.outOfDomain(nb[0]!.similarity))),
      test: share(model.map((c) => c.outOfDomain)),
    },
    samples: sampleRows(test, captions, model),
  };
}
