import { createQueue, loadTf, setBuildInfo, startRuntime, workerLiveness } from "@capflow/common";
import { TrainerEnv } from "./env.ts";
import { createTrainerWorker } from "./jobs/train-model.ts";

/** `capflow worker training`. */
export async function main(): Promise<void> {
  const rt = await startRuntime("trainer", TrainerEnv);
  const { tf, backend } = await loadTf();
  setBuildInfo({ runtime: "tfjs", backend });
  rt.log.info({ backend }, "compute backend");
  const worker = createTrainerWorker({ store: rt.store, tf, connection: rt.workerConnection(), prefix: rt.prefix, log: rt.log });
  worker.on("error", (err) => rt.log.error({ err }, "worker error"));
  worker.on("failed", (job, err) => rt.log.warn({ jobId: job?.id, err: err.message }, "training failed"));
  rt.shutdown.add("worker", () => worker.close());
  const queue = createQueue("training", { connection: rt.redis, prefix: rt.prefix });
  rt.shutdown.add("queue", () => queue.close());
  const liveness = workerLiveness(worker, queue, rt.env.CAPFLOW_LIVENESS_STALE_SECONDS * 1000);
  await rt.serveOps(() => liveness.check());
}
