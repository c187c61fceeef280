import { serveWorker, setBuildInfo, startRuntime } from "@capflow/common";
import { loadTf } from "@capflow/ml";
import { TrainerEnv } from "./env.ts";
import { createTrainerWorker } from "./jobs/training.ts";

/** `capflow worker training`. */
export async function main(): Promise<void> {
  const rt = await startRuntime("trainer", TrainerEnv);
  const { tf, backend } = await loadTf();
  setBuildInfo({ runtime: "tfjs", backend });
  rt.log.info({ backend }, "compute backend");
  const worker = createTrainerWorker({
    store: rt.store,
    tf,
    connection: rt.workerConnection(),
    prefix: rt.prefix,
    log: rt.log,
    lockSeconds: rt.env.CAPFLOW_TRAINER_LOCK_SECONDS,
  });
  await serveWorker(rt, "training", worker);
}
