import os from "node:os";
import { z } from "zod";
import { CommonEnv, envInt, ServedModelsEnv } from "@capflow/common";
import { DECODER_RUNTIMES, EXECUTION_PROVIDERS, EncoderEnvShape } from "@capflow/ml";

/** A comma-separated list, blanks dropped. */
const commaList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean),
    );

export const CaptionEnv = CommonEnv.extend({
  ...EncoderEnvShape,
  /** Jobs in flight per process: enough that close arrivals can share a decode batch. */
  CAPFLOW_CAPTION_CONCURRENCY: envInt(1, 1024).default(64),
  /** Bulk shards in flight per process, on their own queue beside the online slots. */
  CAPFLOW_CAPTION_BULK_CONCURRENCY: envInt(1, 64).default(2),
  CAPFLOW_CAPTION_MAX_BATCH: envInt(1, 1024).default(64),
  CAPFLOW_CAPTION_MAX_WAIT_MS: envInt(0, 10_000).default(10),
  /** How often the published model pointer is checked for a new model. */
  CAPFLOW_MODEL_POLL_SECONDS: envInt(1).default(5),
  CAPFLOW_MODEL_MAX_BYTES: envInt(1).default(512 * 1024 * 1024),
  /** The models this worker serves; a job naming another fails at once (names.ts says why). */
  CAPFLOW_CAPTION_MODELS: ServedModelsEnv,
  /** Where captions are decoded: ONNX Runtime (default; docs/benchmarks.md) or the tfjs model itself. */
  CAPFLOW_DECODER_RUNTIME: z.enum(DECODER_RUNTIMES).default("onnx"),
  /** ONNX Runtime intra-op threads of the decoder. */
  CAPFLOW_DECODER_THREADS: envInt(1, 256).default(Math.max(1, os.availableParallelism())),
  /** ONNX Runtime execution providers of the decoder, in order of preference (cpu is the fallback). */
  CAPFLOW_DECODER_EXECUTION_PROVIDERS: commaList("cpu").pipe(z.array(z.enum(EXECUTION_PROVIDERS)).min(1)),
  CAPFLOW_MAX_IMAGE_PIXELS: envInt(1).default(50_000_000),
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(300),
});
export type CaptionEnv = z.infer<typeof CaptionEnv>;
