export * from "./datasets/index.ts";
export { ingestDataset, type IngestOptions, type IngestSummary } from "./ingest/ingest-dataset.ts";
export * from "./reconcile/index.ts";
export { buildEmojiDataset } from "./datasets/emoji/build-emoji-dataset.ts";
export { buildPhotoDataset, DEFAULT_PHOTO_SOURCES } from "./datasets/photos/build-photo-dataset.ts";
