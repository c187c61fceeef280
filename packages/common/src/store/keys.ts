/** The object-store layout (docs/architecture.md, "Object-store layout"), in one place. */
export const image = (sha256: string, ext: string) => `images/${sha256}.${ext}`;
/**
 * An image uploaded to the API (not part of a dataset), under the UTC hour it arrived
 * (`uploads/2026120115/<sha>.png`): the retention sweep deletes whole hours past their TTL without
 * reading each object's date, and never touches `images/`, which datasets share by content.
 */
export const upload = (at: Date, sha256: string, ext: string) => `uploads/${uploadHour(at)}/${sha256}.${ext}`;
export const uploadHour = (at: Date) => at.toISOString().slice(0, 13).replace(/[-T]/g, "");
export const uploadsPrefix = "uploads/";
export const manifest = (dataset: string) => `datasets/${dataset}/manifest.jsonl`;
export const datasetInfo = (dataset: string) => `datasets/${dataset}/dataset.json`;
export const shardList = (dataset: string, shardId: string) => `datasets/${dataset}/shards/${shardId}.json`;
export const featureMatrix = (encoderId: string, dataset: string, shardId: string) =>
  `features/${encoderId}/${dataset}/${shardId}.npy`;
/** Augmented training views of a shard's images (features/shard-format.ts `ShardIndex.views`). */
export const featureViewsMatrix = (encoderId: string, dataset: string, shardId: string) =>
  `features/${encoderId}/${dataset}/${shardId}.views.npy`;
export const featureIndex = (encoderId: string, dataset: string, shardId: string) =>
  `features/${encoderId}/${dataset}/${shardId}.json`;
export const featurePrefix = (encoderId: string, dataset: string) => `features/${encoderId}/${dataset}/`;
export const runEpoch = (runId: string, epoch: number) =>
  `runs/${runId}/epoch-${String(epoch).padStart(4, "0")}/`;
export const runPrefix = (runId: string) => `runs/${runId}/`;
export const modelPointer = (name: string) => `models/${name}/latest`;
export const captionShardResults = (batchId: string, shardId: string) =>
  `captions/${batchId}/shards/${shardId}.jsonl`;
export const captionBatch = (batchId: string) => `captions/${batchId}/batch.json`;
/** What one ingest worker made of one range of a dataset's records (`capflow ingest --distribute`). */
export const ingestPart = (runId: string, range: number) =>
  `ingest/${runId}/part-${String(range).padStart(6, "0")}.json`;
export const ingestRunPrefix = (runId: string) => `ingest/${runId}/`;
