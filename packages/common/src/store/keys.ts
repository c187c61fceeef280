/** The object-store layout (DESIGN.md), in one place. */
export const image = (sha256: string, ext: string) => `images/${sha256}.${ext}`;
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
export const quarantine = (dataset: string, imageId: string) => `quarantine/${dataset}/${imageId}.json`;
export const runEpoch = (runId: string, epoch: number) =>
  `runs/${runId}/epoch-${String(epoch).padStart(4, "0")}/`;
export const runPrefix = (runId: string) => `runs/${runId}/`;
export const modelPointer = (name: string) => `models/${name}/latest`;
export const captionResults = (batchId: string) => `captions/${batchId}/results.jsonl`;
export const captionShardResults = (batchId: string, shardId: string) =>
  `captions/${batchId}/shards/${shardId}.jsonl`;
export const captionBatch = (batchId: string) => `captions/${batchId}/batch.json`;
export const captionRequest = (requestId: string) => `captions/requests/${requestId}.json`;
export const encoderOnnx = (encoderId: string) => `encoders/${encoderId}/model.onnx`;
