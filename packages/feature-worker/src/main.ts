import { serveWorker, setBuildInfo, startRuntime } from "@capflow/common";
import { encoderConfigFromEnv, loadEncoder as load } from "@capflow/ml";
import { FeatureEnv } from "./env.ts";
import { assertProvider, primaryProvider } from "./require-provider.ts";
import { announceEncoder, createFeatureWorker } from "./jobs/extract-features.ts";

/** `capflow worker features`: one process, one encoder, one BullMQ worker. */
export async function main(): Promise<void> {
  const rt = await startRuntime("feature-worker", FeatureEnv);
  const { env, log } = rt;
  const required = env.CAPFLOW_FEATURE_REQUIRE_PROVIDER;
  const providers = env.CAPFLOW_FEATURE_EXECUTION_PROVIDERS;
  const encoder = await load({
    ...encoderConfigFromEnv(env, { store: rt.store, log }),
    executionProviders:
      env.CAPFLOW_FEATURE_RUNTIME === "onnx"
        ? // A required provider goes first even when the list forgot it.
          required && !providers.includes(required)
          ? [required, ...providers]
          : providers
        : undefined,
  });
  rt.shutdown.add("encoder", () => encoder.dispose());
  setBuildInfo({
    runtime: encoder.runtime,
    backend: encoder.backend,
    encoder: encoder.id,
    provider: primaryProvider(encoder.backend),
    accelerator: env.CAPFLOW_NODE_ACCELERATOR,
  });
  try {
    assertProvider(required, encoder.backend);
  } catch (err) {
    log.fatal({ backend: encoder.backend, required }, (err as Error).message);
    await rt.shutdown.run();
    throw err;
  }
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
