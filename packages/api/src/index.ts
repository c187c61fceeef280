export { apiMain } from "./main.ts";
export { buildApiServer, type ApiDeps, type ApiConfig } from "./server.ts";
export { ApiEnv, apiConfigFrom } from "./api-env.ts";
export { enqueueImageCaption, storeImage, awaitCaption, type DecodeChoice } from "./captions.ts";
export { captionBatchStatus, openCaptionBatchResults, submitCaptionBatch } from "./caption-jobs.ts";
export { CaptionJobRequest } from "./schemas.ts";
export { AdminEnv, startAdminServer, registerAdmin } from "./admin/index.ts";
export { sweepExpired, startSweeper, type RetentionPolicy } from "./retention.ts";
export {
  pipelineStatus,
  listDatasets,
  listModels,
  type PipelineStatus,
  type DatasetStatus,
  type RunStatus,
  type StatusDeps,
} from "./status/pipeline-status.ts";
export { featureProgress, type FeatureProgress } from "./status/feature-status.ts";
export { registerWebUi } from "./web-routes.ts";
export { type CaptionJobStatus } from "./caption-jobs.ts";
