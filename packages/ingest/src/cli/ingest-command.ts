import { CommonEnv, createQueue, startRuntime } from "@capflow/common";
import { detectFormat, type DatasetFormat } from "../datasets/index.ts";
import { ingestDataset, type IngestSummary } from "../ingest/ingest-dataset.ts";
import { progress } from "./progress.ts";

export interface IngestCommandOptions {
  format?: DatasetFormat;
  dataset?: string;
  shardSize: number;
  onError: "skip" | "fail";
  augmentViews?: number;
}

/** `capflow ingest <dir>`: prints issues as they come and a summary at the end. */
export async function ingestCommand(dir: string, opts: IngestCommandOptions): Promise<IngestSummary> {
  const rt = await startRuntime("ingest", CommonEnv);
  try {
    const format = opts.format ?? (await detectFormat(dir));
    const dataset = opts.dataset ?? defaultName(dir);
    const queue = createQueue("features", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const bar = progress(`ingest ${dataset}`);
    const summary = await ingestDataset(rt.store, queue, {
      dataset,
      format,
      dir,
      shardSize: opts.shardSize,
      onError: opts.onError,
      augmentViews: opts.augmentViews ?? 0,
      onIssue: (issue) => rt.log.warn({ ...issue }, "dataset issue"),
      onProgress: ({ images, total }) => bar.update(images, total),
    });
    bar.stop();
    rt.log.info({ ...summary }, "ingest done");
    process.stdout.write(
      `ingested ${summary.dataset}: ${summary.images} images, ${summary.captions} captions, ${summary.duplicates} duplicate files\n` +
        `  issues: ${summary.issues.malformed} malformed, ${summary.issues["missing-image"]} missing images, ${summary.issues.skipped} skipped\n` +
        `  shards: ${summary.shards} (${summary.shardsEnqueued} enqueued, ${summary.shardsAlreadyQueued} already queued, ${summary.shardsAlreadyDone} already done)\n`,
    );
    return summary;
  } finally {
    await rt.shutdown.run();
  }
}

function defaultName(dir: string): string {
  return (
    dir
      .replace(/\/+$/, "")
      .split("/")
      .pop()
      ?.replace(/[^\w.-]/g, "-") || "dataset"
  );
}
