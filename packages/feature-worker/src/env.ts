import { z } from "zod";
import { CommonEnv, envInt } from "@capflow/common";
import { EXECUTION_PROVIDERS, EncoderEnvShape } from "@capflow/ml";

export const FeatureEnv = CommonEnv.extend({
  ...EncoderEnvShape,
  CAPFLOW_FEATURE_BATCH: envInt(1, 256).default(8),
  CAPFLOW_FEATURE_CONCURRENCY: envInt(1, 64).default(1),
  CAPFLOW_FEATURE_DTYPE: z.enum(["float32", "float16"]).default("float32"),
  CAPFLOW_FEATURE_EXECUTION_PROVIDERS: z
    .string()
    .default("cpu")
    .transform((s) =>
      s
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
    ),
  // A GPU node sets this (e.g. cuda): the worker refuses to start when that provider did not load.
  CAPFLOW_FEATURE_REQUIRE_PROVIDER: z.enum(EXECUTION_PROVIDERS).optional(),
  // What the node was deployed as ("gpu" in the GPU manifests); a label of capflow_build_info, so an
  // alert can catch a worker labelled gpu whose encoder runs on the cpu.
  CAPFLOW_NODE_ACCELERATOR: z.enum(["cpu", "gpu"]).default("cpu"),
  CAPFLOW_MAX_IMAGE_PIXELS: envInt(1).default(50_000_000),
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(600),
  // How soon a shard whose worker died is redone: its lock must expire, then a stalled check (every
  // interval) must see it twice. 60 s + 30 s in production (test 2 measured 103 s); tests that crash
  // workers on purpose shorten both.
  CAPFLOW_FEATURE_LOCK_SECONDS: envInt(2, 3600).default(60),
  CAPFLOW_FEATURE_STALLED_INTERVAL_SECONDS: envInt(1, 3600).default(30),
});
export type FeatureEnv = z.infer<typeof FeatureEnv>;
