import os from "node:os";
import { z } from "zod";
import { CommonEnv, envInt } from "@capflow/common";
// ./encoder/encoder-env.ts (outside this change's files).
import { EncoderEnvShape } from "@capflow/common";

export const CaptionEnv = CommonEnv.extend({
  ...EncoderEnvShape,
  /** Jobs in flight per process: enough that close arrivals can share a decode batch. */
  CAPFLOW_CAPTION_CONCURRENCY: envInt(1, 1024).default(64),
  CAPFLOW_CAPTION_MAX_BATCH: envInt(1, 1024).default(64),
  CAPFLOW_CAPTION_MAX_WAIT_MS: envInt(0, 10_000).default(10),
  /** How often the published model pointer is checked for a new model. */
  CAPFLOW_MODEL_POLL_SECONDS: envInt(1).default(5),
  CAPFLOW_MODEL_MAX_BYTES: envInt(1).default(512 * 1024 * 1024),
  CAPFLOW_CAPTION_MODELS: z
    .string()
    .default("default")
    .transform((s) =>
      s
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean),
    ),
  CAPFLOW_FEATURE_RUNTIME: z.enum(["onnx", "tfjs"]).default("onnx"),
  CAPFLOW_FEATURE_THREADS: envInt(1, 256).default(Math.max(1, os.availableParallelism())),
  CAPFLOW_ENCODER_CACHE: z.string().optional(),
  CAPFLOW_MAX_IMAGE_PIXELS: envInt(1).default(50_000_000),
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(300),
});
export type CaptionEnv = z.infer<typeof CaptionEnv>;
