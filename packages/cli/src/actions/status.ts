import { CommonEnv, createQueue, NotFoundError, startRuntime, type QueueName } from "@capflow/common";
import { listDatasets, pipelineStatus, type PipelineStatus, type StatusDeps } from "@capflow/api";
import { renderStatus } from "./render-status.ts";

/** `capflow status [<dataset>]`: text by default, one JSON object with --json. */
export async function statusCommand(
  dataset: string | undefined,
  opts: { json?: boolean },
): Promise<PipelineStatus> {
  const rt = await startRuntime("status", CommonEnv, { signals: false });
  try {
    const ctx = { connection: rt.redis, prefix: rt.prefix };
    const queues = {
      features: createQueue("features", ctx),
      training: createQueue("training", ctx),
      captions: createQueue("captions", ctx),
      "caption-bulk": createQueue("caption-bulk", ctx),
      ingest: createQueue("ingest", ctx),
    } satisfies StatusDeps["queues"];
    for (const q of Object.values(queues)) rt.shutdown.add(`queue ${q.name as QueueName}`, () => q.close());
    let status: PipelineStatus;
    try {
      status = await pipelineStatus({ store: rt.store, redis: rt.redis, queues }, dataset);
    } catch (err) {
      if (dataset && err instanceof NotFoundError) {
        const known = await listDatasets(rt.store);
        throw new Error(
          `no ingested dataset named "${dataset}" in ${rt.store.location}; ` +
            (known.length ? `datasets: ${known.join(", ")}` : "none ingested yet (capflow ingest <dir>)"),
          { cause: err },
        );
      }
      throw err;
    }
    process.stdout.write(opts.json ? `${JSON.stringify(status)}\n` : renderStatus(status));
    return status;
  } finally {
    await rt.shutdown.run();
  }
}
