export { main } from "./main.ts";
export { FeatureEnv } from "./env.ts";
export { createFeatureWorker, extractFeatures, type FeatureWorkerDeps } from "./jobs/extract-features.ts";
export { extractShard, readShardList, type ShardList, type ShardFailure } from "./jobs/extract-shard.ts";
export { loadEncoder, type Encoder } from "@capflow/ml";
export { writeShard } from "./shard-writer.ts";
