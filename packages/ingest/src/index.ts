export * from "./datasets/index.ts";
export { ingestDataset, type IngestOptions, type IngestSummary } from "./ingest/ingest-dataset.ts";
export * from "./reconcile/index.ts";
export { ingestCommand, type IngestCommandOptions } from "./cli/ingest-command.ts";
export { progress } from "./cli/progress.ts";
export { buildEmojiDataset } from "./datasets/emoji/build-emoji-dataset.ts";
export { buildPhotoDataset, DEFAULT_PHOTO_SOURCES } from "./datasets/photos/build-photo-dataset.ts";
export { apiMain } from "./api/main.ts";
export { buildApiServer, type ApiDeps, type ApiConfig } from "./api/server.ts";
export { ApiEnv, apiConfigFrom } from "./api/api-env.ts";
export {
  captionImagesCommand,
  captionBulkCommand,
  type CaptionCommandOptions,
} from "./api/caption-command.ts";
