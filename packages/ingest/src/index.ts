export * from "./datasets/index.ts";
export { ingestDataset, type IngestOptions, type IngestSummary } from "./ingest/ingest-dataset.ts";
export {
  ingestDistributed,
  type DistributedIngestOptions,
  type DistributedIngestSummary,
} from "./ingest/distributed-ingest.ts";
// One range's plan and work, apart from the queue (`pnpm bench ingest-ranges` times them).
export { enumerateRanges } from "./ingest/enumerate-ranges.ts";
export { storeRange } from "./ingest/store-range.ts";
export { main as ingestWorkerMain, IngestWorkerEnv } from "./worker.ts";
export * from "./reconcile/index.ts";
export { buildEmojiDataset } from "./datasets/emoji/build-emoji-dataset.ts";
export { buildPhotoDataset, DEFAULT_PHOTO_SOURCES } from "./datasets/photos/build-photo-dataset.ts";
