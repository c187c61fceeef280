/**
 * @capflow/common: the platform every process shares. Configuration, logging, shutdown, Redis and
 * the job catalog, object stores and their key layout, the formats on the store (manifest, feature
 * shards), metrics and the ops server. Nothing here loads a model runtime (see @capflow/ml).
 */
export * from "./config/env.ts";
export * from "./config/parse-env.ts";
export * from "./config/redact.ts";
export * from "./log.ts";
export * from "./names.ts";
export * from "./shutdown.ts";
export * from "./runtime.ts";
export * from "./queue/redis.ts";
export * from "./queue/embedded-redis.ts";
export * from "./queue/redis-endpoint.ts";
export * from "./queue/jobs.ts";
export * from "./queue/queues.ts";
export * from "./queue/liveness.ts";
export * from "./queue/bulk-progress.ts";
export * from "./store/index.ts";
export * from "./ops/metrics.ts";
export * from "./ops/ops-server.ts";
export * from "./features/npy.ts";
export * from "./features/shard-format.ts";
export * from "./features/augment-recipe.ts";
export * from "./features/export/index.ts";
export * from "./dataset/manifest.ts";
export * from "./queue/queue-admin.ts";
export * from "./queue/watch-concurrency.ts";
export * from "./ops/queue-metrics.ts";
export * from "./serve-worker.ts";
export * from "./content/hash.ts";
export * from "./content/image-format.ts";
export * from "./queue/redis-config.ts";
