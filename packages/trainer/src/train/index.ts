export { trainEpoch, evaluateLoss, evaluateLossSums, teacherBatches, shuffle, rng } from "./train-epoch.ts";
export type { TrainMethod, TrainEpochOptions, EpochResult } from "./train-epoch.ts";
