import { serveWorker, setBuildInfo, startRuntime } from "@capflow/common";
import { loadEncoder as load } from "@capflow/ml";
import { encoderModelFromEnv } from "@capflow/ml";
import { FeatureEnv } from "./env.ts";
import { announceEncoder, createFeatureWorker } from "./jobs/extract-features.ts";

/** `capflow worker features`: one process, one encoder, one BullMQ worker. */
export async function main(): Promise<void> {
  const rt = await startRuntime("feature-worker", FeatureEnv);
  const { env, log } = rt;
  const encoder = await load({
    runtime: env.CAPFLOW_FEATURE_RUNTIME,
    threads: env.CAPFLOW_FEATURE_THREADS,
    cacheDir: env.CAPFLOW_ENCODER_CACHE,
    model: encoderModelFromEnv(env),
    store: rt.store,
    executionProviders:
      env.CAPFLOW_FEATURE_RUNTIME === "onnx" ? env.CAPFLOW_FEATURE_EXECUTION_PROVIDERS : undefined,
    logger: { info: (msg, f) => log.info(f ?? {}, msg), warn: (msg, f) => log.warn(f ?? {}, msg) },
  });
  rt.shutdown.add("encoder", () => encoder.dispose());
  setBuildInfo({ runtime: encoder.runtime, backend: encoder.backend, encoder: encoder.id });
  log.info(
    { encoder: encoder.id, runtime: encoder.runtime, backend: encoder.backend, dim: encoder.dim },
    "encoder loaded",
  );
  await announceEncoder(rt.store, encoder);

  const worker = createFeatureWorker({
    store: rt.store,
    encoder,
    connection: rt.workerConnection(),
    prefix: rt.prefix,
    log,
    batchSize: env.CAPFLOW_FEATURE_BATCH,
    concurrency: env.CAPFLOW_FEATURE_CONCURRENCY,
    dtype: env.CAPFLOW_FEATURE_DTYPE,
    maxPixels: env.CAPFLOW_MAX_IMAGE_PIXELS,
    lockDurationMs: env.CAPFLOW_FEATURE_LOCK_SECONDS * 1000,
    stalledIntervalMs: env.CAPFLOW_FEATURE_STALLED_INTERVAL_SECONDS * 1000,
  });
  await serveWorker(rt, "features", worker);
}
