import { CommonEnv, createQueue, startRuntime } from "@capflow/common";
import { reconcileDataset, type ReconcileSummary } from "@capflow/ingest";

export interface ReconcileCommandOptions {
  encoder?: string;
  dryRun?: boolean;
}

/** `capflow reconcile <dataset>`: prints the summary as one JSON line (scripts and tests read it). */
export async function reconcileCommand(
  dataset: string,
  opts: ReconcileCommandOptions,
): Promise<ReconcileSummary> {
  const rt = await startRuntime("reconcile", CommonEnv);
  try {
    const queue = createQueue("features", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const summary = await reconcileDataset(rt.store, queue, {
      dataset,
      encoderId: opts.encoder,
      dryRun: opts.dryRun,
    });
    rt.log.info({ ...summary, reenqueuedShards: summary.reenqueuedShards.length }, "reconcile done");
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary;
  } finally {
    await rt.shutdown.run();
  }
}
