export * from "./datasets/index.ts";
export { ingestDataset, type IngestOptions, type IngestSummary } from "./ingest/ingest-dataset.ts";
export * from "./reconcile/index.ts";
export {
  ingestCommand,
  checkDatasetDir,
  describeIngest,
  DatasetPathError,
  type IngestCommandOptions,
} from "./cli/ingest-command.ts";
export { progress } from "./cli/progress.ts";
export { buildEmojiDataset } from "./datasets/emoji/build-emoji-dataset.ts";
export { apiMain } from "./api/main.ts";
export { buildApiServer, type ApiDeps, type ApiConfig } from "./api/server.ts";
export { ApiEnv, apiConfigFrom } from "./api/api-env.ts";
export {
  captionImagesCommand,
  captionBulkCommand,
  waitForBulkFeatures,
  BulkNotReadyError,
  type CaptionCommandOptions,
} from "./api/caption-command.ts";
export { statusCommand } from "./status/status-command.ts";
export {
  pipelineStatus,
  listDatasets,
  type PipelineStatus,
  type DatasetStatus,
  type RunStatus,
  type StatusDeps,
} from "./status/pipeline-status.ts";
export { featureProgress, type FeatureProgress } from "./status/feature-status.ts";
export { renderStatus } from "./status/render-status.ts";
export { registerWebUi } from "./api/web-routes.ts";
