export { main } from "./main.ts";
export { trainRun, type RunResult, type RunProgress, type TrainingSpec } from "./run/train-run.ts";
export { createTrainerWorker } from "./jobs/training.ts";
export * from "./checkpoint/checkpoint-store.ts";
export * from "./eval/index.ts";
export { renderReport, escapeHtml, lineChart } from "./report/render-report.ts";
export { writeReport, reportKey } from "./report/write-report.ts";
export { rng, shuffle, trainEpoch, evaluateLoss } from "./train/index.ts";
export { TrainerEnv } from "./env.ts";
export {
  streamWindows,
  storeShardSource,
  shardOrder,
  type ShardSource,
  type ShardWindow,
  type StreamedImage,
  type LoadedShard,
} from "./data/shard-stream.ts";
export { toCaptionSet } from "./data/caption-set.ts";
export { scanShards, FeaturesNotReadyError, type DatasetScan } from "./data/scan-shards.ts";
export {
  trainStreamedEpoch,
  validateStreamed,
  splitWindows,
  type StreamedData,
  type WindowEncoding,
} from "./run/streamed-epoch.ts";
export { evaluateModel, type EvalOptions, type EvalReport } from "./eval/evaluate-model.ts";
export { scoreWithIntervals, formatInterval, exactMatch, hasTripleRepeat } from "./eval/bootstrap.ts";
export type { Interval, ScoresWithIntervals } from "./eval/bootstrap.ts";
export { scoresTable } from "./report/render-report.ts";
export { learningRate, LrSchedule, DEFAULT_SCHEDULE } from "./train/lr-schedule.ts";
export { selectEpoch } from "./run/train-run.ts";
export { SYSTEMS, SYSTEM_LABELS, type System, type TestReport } from "./eval/test-report.ts";
