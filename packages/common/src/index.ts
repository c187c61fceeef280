export * from "./config/env.ts";
export * from "./config/parse-env.ts";
export * from "./log.ts";
export * from "./shutdown.ts";
export * from "./runtime.ts";
export * from "./queue/redis.ts";
export * from "./queue/embedded-redis.ts";
export * from "./queue/redis-endpoint.ts";
export * from "./queue/jobs.ts";
export * from "./queue/queues.ts";
export * from "./queue/liveness.ts";
export * from "./store/index.ts";
export * from "./ops/metrics.ts";
export * from "./ops/ops-server.ts";
export * from "./features/npy.ts";
export * from "./features/shard-format.ts";
export * from "./text/index.ts";
export * from "./dataset/manifest.ts";
export * from "./compute/index.ts";
export * from "./model/index.ts";
export * from "./registry/published-model.ts";
export {
  load as loadEncoder,
  encoderId as defaultEncoderId,
  PIXELS_PER_IMAGE,
  IMAGE_SIZE,
  EXECUTION_PROVIDERS,
} from "./encoder/index.ts";
export type { Encoder, EncoderConfig, EncoderRuntime } from "./encoder/index.ts";
export * from "./preprocess/decode-image.ts";
export * from "./preprocess/augment-view.ts";
export * from "./admin/index.ts";
export * from "./serve-worker.ts";
export { EncoderEnvShape, encoderModelFromEnv } from "./encoder/encoder-env.ts";
