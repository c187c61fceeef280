import {
  buildVocabulary,
  cleanCaption,
  publishModel,
  createCaptionModel,
  keys,
  metrics,
  putJson,
  vocabularyFromJSON,
  type CaptionModel,
  type JobData,
  type Logger,
  type ObjectStore,
  type Tf,
} from "@capflow/common";
import {
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type EpochMetrics,
} from "../checkpoint/checkpoint-store.ts";
import { maxCaptionLength, toCaptionSet } from "../data/caption-set.ts";
import { loadGloveEmbeddings } from "../data/glove.ts";
import { cleanedCaptions, loadSplits, trainingRows } from "../data/load-splits.ts";
import { buildRetrievalIndex } from "../eval/index.ts";
import { evaluateLoss, trainEpoch } from "../train/index.ts";
import { captionFeatures, scoreCaptions, type CaptionScores } from "./evaluate.ts";

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

export type TrainingSpec = JobData<"training">;

export interface RunProgress {
  epoch: number;
  epochs: number;
  trainLoss?: number;
  valLoss?: number;
  cider?: number;
  etaSeconds?: number;
}

export interface TestReport {
  images: number;
  greedy: CaptionScores;
  beam: CaptionScores;
  baseline: CaptionScores;
  samples: Array<{
    key: string;
    file: string;
    greedy: string;
    beam: string;
    baseline: string;
    references: string[];
  }>;
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
export async function trainRun(deps: RunDeps, spec: TrainingSpec): Promise<RunResult> {
  const { store, tf, log } = deps;
  const splits = await loadSplits(store, spec.dataset, spec.encoderId, {
    views: spec.augmentedViews ?? true,
  });
  if (splits.train.ids.length === 0)
    throw new Error(`dataset "${spec.dataset}" has no training images with features`);
  const trainCleaned = cleanedCaptions(splits.train);
  const valCleaned = cleanedCaptions(splits.val);

  const latest = await latestCheckpoint(store, spec.runId, (epoch, why) =>
    log.warn({ epoch, why }, "skipping incomplete checkpoint"),
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
    const trainRows = trainingRows(splits.train, trainCleaned);
    const trainSet = toCaptionSet(trainRows.features, splits.train.dim, trainRows.cleaned, vocab, maxLength);
    const valSet = toCaptionSet(splits.val.features, splits.val.dim, valCleaned, vocab, maxLength);
    const method = spec.method === "prefix" ? "prefix" : "teacher";
    log.info(
      {
        runId: spec.runId,
        train: splits.train.ids.length,
        trainViews: trainRows.views,
        val: splits.val.ids.length,
        test: splits.test.ids.length,
        vocab: vocab.size,
        maxLength,
        method,
      },
      "training data loaded",
    );

    for (let epoch = resumedFrom + 1; epoch <= spec.epochs; epoch++) {
      deps.signal?.throwIfAborted();
      const started = performance.now();
      // Epochs are 0-based for the shuffle: order is a pure function of (seed, epoch index).
      const train = await trainEpoch(model, trainSet, {
        method,
        batchSize: spec.batchSize,
        seed: spec.seed,
        epoch: epoch - 1,
      });
      const seconds = (performance.now() - started) / 1000;
      const valLoss = valSet.imageOf.length > 0 ? evaluateLoss(model, valSet) : NaN;
      const valCaptions = await captionFeatures(model, vocab, splits.val.features, splits.val.dim, {
        method: "greedy",
        beamWidth: 1,
      });
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
        config: { spec, model: { ...model.config, pretrainedEmbeddings: undefined } },
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

    const best = history.reduce((a, b) => (b.cider > a.cider ? b : a), history[0]!);
    if (best.epoch !== history.at(-1)?.epoch) {
      const ckpt = await loadCheckpoint(store, spec.runId, best.epoch);
      model.setWeights(ckpt.weights);
    }
    const test = await testReport(model, vocab, splits, spec.beamWidth);
    const result: RunResult = {
      runId: spec.runId,
      epochs: spec.epochs,
      resumedFrom,
      best: { epoch: best.epoch, cider: best.cider },
      history,
      test,
    };
    await putJson(store, `${keys.runPrefix(spec.runId)}result.json`, result);
    if (spec.publishAs) {
      await publishModel(store, spec.publishAs, {
        runId: spec.runId,
        epoch: best.epoch,
        encoderId: spec.encoderId,
        cider: best.cider,
      });
      result.published = keys.modelPointer(spec.publishAs);
      log.info({ model: spec.publishAs, runId: spec.runId, epoch: best.epoch }, "model published");
    }
    return result;
  } finally {
    model.dispose();
  }
}

async function testReport(
  model: CaptionModel,
  vocab: ReturnType<typeof vocabularyFromJSON>,
  splits: Awaited<ReturnType<typeof loadSplits>>,
  beamWidth: number,
): Promise<TestReport> {
  const { test, train } = splits;
  const refs = cleanedCaptions(test);
  const greedy = await captionFeatures(model, vocab, test.features, test.dim, {
    method: "greedy",
    beamWidth,
  });
  const beam = await captionFeatures(model, vocab, test.features, test.dim, { method: "beam", beamWidth });
  // The floor to beat: each test image gets the first caption of its nearest training image.
  const index = buildRetrievalIndex(train.features, train.dim, train.captions);
  const baseline = index
    .captions(test.features, test.ids.length)
    .map((caps) => cleanCaption(caps[0] ?? "").join(" "));
  const empty = { bleu1: 0, bleu2: 0, bleu3: 0, bleu4: 0, cider: 0 };
  return {
    images: test.ids.length,
    greedy: test.ids.length ? scoreCaptions(greedy, refs) : empty,
    beam: test.ids.length ? scoreCaptions(beam, refs) : empty,
    baseline: test.ids.length ? scoreCaptions(baseline, refs) : empty,
    samples: test.ids.map((_, i) => ({
      key: test.keys[i]!,
      file: test.files[i]!,
      greedy: greedy[i]!,
      beam: beam[i]!,
      baseline: baseline[i]!,
      references: test.captions[i]!,
    })),
  };
}
