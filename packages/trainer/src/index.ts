export { main } from "./main.ts";
export {
  trainRun,
  type RunResult,
  type RunProgress,
  type TrainingSpec,
  type TestReport,
} from "./jobs/train-run.ts";
export { createTrainerWorker } from "./jobs/train-model.ts";
export { trainCommand, printResult, type TrainCommandOptions } from "./cli/train-command.ts";
export * from "./checkpoint/checkpoint-store.ts";
export * from "./eval/index.ts";
export { renderReport, escapeHtml, lineChart } from "./report/render-report.ts";
export { writeReport, reportKey } from "./report/write-report.ts";
export { submitRun, formatProgress } from "./cli/submit-run.ts";
export { rng, shuffle } from "./train/index.ts";
export { evaluateModel, type EvalOptions, type EvalReport } from "./eval/evaluate-model.ts";
export { scoreWithIntervals, formatInterval, exactMatch, hasTripleRepeat } from "./eval/bootstrap.ts";
export type { Interval, ScoresWithIntervals } from "./eval/bootstrap.ts";
export { formatTestScores } from "./cli/train-command.ts";
export { scoresTable } from "./report/render-report.ts";
export { learningRate, LrSchedule, DEFAULT_SCHEDULE } from "./train/lr-schedule.ts";
