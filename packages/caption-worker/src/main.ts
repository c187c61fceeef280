import { serveWorkers, setBuildInfo, startRuntime } from "@capflow/common";
import { encoderConfigFromEnv, loadEncoder, loadTf } from "@capflow/ml";
import { Captioner } from "./captioner.ts";
import { CaptionEnv } from "./env.ts";
import { createCaptionWorkers } from "./jobs/caption.ts";

/** `capflow worker captions`. */
export async function main(): Promise<void> {
  const rt = await startRuntime("caption-worker", CaptionEnv);
  const { env, log } = rt;
  const { tf, backend } = await loadTf();
  const encoder = await loadEncoder(encoderConfigFromEnv(env, { store: rt.store, log }));
  rt.shutdown.add("encoder", () => encoder.dispose());
  setBuildInfo({ runtime: encoder.runtime, backend, encoder: encoder.id });
  const captioner = new Captioner({
    store: rt.store,
    tf,
    log,
    encoder,
    maxBatch: env.CAPFLOW_CAPTION_MAX_BATCH,
    maxWaitMs: env.CAPFLOW_CAPTION_MAX_WAIT_MS,
    maxModelBytes: env.CAPFLOW_MODEL_MAX_BYTES,
    models: env.CAPFLOW_CAPTION_MODELS,
    decoder: {
      runtime: env.CAPFLOW_DECODER_RUNTIME,
      threads: env.CAPFLOW_DECODER_THREADS,
      executionProviders: env.CAPFLOW_DECODER_EXECUTION_PROVIDERS,
    },
  });
  rt.shutdown.add("models", async () => captioner.dispose());
  for (const name of env.CAPFLOW_CAPTION_MODELS) await captioner.holder(name).refresh();
  const poll = setInterval(() => void captioner.refreshAll(), env.CAPFLOW_MODEL_POLL_SECONDS * 1000);
  rt.shutdown.add("model poll", async () => clearInterval(poll));

  const { online, bulk } = createCaptionWorkers({
    captioner,
    store: rt.store,
    connect: () => rt.workerConnection(),
    prefix: rt.prefix,
    log,
    concurrency: env.CAPFLOW_CAPTION_CONCURRENCY,
    bulkConcurrency: env.CAPFLOW_CAPTION_BULK_CONCURRENCY,
    maxPixels: env.CAPFLOW_MAX_IMAGE_PIXELS,
  });
  await serveWorkers(rt, [
    { name: "captions", worker: online },
    { name: "caption-bulk", worker: bulk },
  ]);
}
