import fs from "node:fs/promises";
import { CommonEnv, createQueue, startRuntime } from "@capflow/common";
import {
  detectFormat,
  ingestDataset,
  ingestDistributed,
  type DatasetFormat,
  type IngestSummary,
} from "@capflow/ingest";
import { progress } from "./progress.ts";

export interface IngestCommandOptions {
  format?: DatasetFormat;
  dataset?: string;
  shardSize: number;
  onError: "skip" | "fail";
  augmentViews?: number;
  /** Enqueue ranges for `capflow worker ingest` processes instead of storing the images here. */
  distribute?: boolean;
  rangeSize?: number;
  /** Print the summary as one JSON object instead of text. */
  json?: boolean;
}

/** The dataset folder is wrong: reported before any Redis or store is started. */
export class DatasetPathError extends Error {
  override name = "DatasetPathError";
}

/** Checks the folder and its format without touching Redis or the store. */
export async function checkDatasetDir(dir: string, format?: DatasetFormat): Promise<DatasetFormat> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat) throw new DatasetPathError(`no such folder: ${dir}`);
  if (!stat.isDirectory()) throw new DatasetPathError(`not a folder: ${dir} (give the dataset's folder)`);
  return (
    format ??
    (await detectFormat(dir).catch((err: Error) => Promise.reject(new DatasetPathError(err.message))))
  );
}

/** `capflow ingest <dir>`: progress and issues on stderr, the summary on stdout. */
export async function ingestCommand(dir: string, opts: IngestCommandOptions): Promise<IngestSummary> {
  const format = await checkDatasetDir(dir, opts.format);
  const rt = await startRuntime("ingest", CommonEnv);
  try {
    const dataset = opts.dataset ?? defaultName(dir);
    const queue = createQueue("features", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const bar = progress(`ingest ${dataset}`);
    const common = {
      dataset,
      format,
      dir,
      shardSize: opts.shardSize,
      onError: opts.onError,
      augmentViews: opts.augmentViews ?? 0,
      onIssue: (issue: object) => rt.log.warn({ ...issue }, "dataset issue"),
      onProgress: ({ images, total }: { images: number; total?: number }) => bar.update(images, total),
    };
    let summary: IngestSummary;
    if (opts.distribute) {
      const ingest = createQueue("ingest", { connection: rt.redis, prefix: rt.prefix });
      rt.shutdown.add("ingest queue", () => ingest.close());
      summary = await ingestDistributed(
        { store: rt.store, features: queue, ingest, redis: rt.redis, prefix: rt.prefix },
        {
          ...common,
          rangeSize: opts.rangeSize,
          onEnqueued: (p) =>
            rt.log.info(p, "ingest ranges enqueued: waiting for `capflow worker ingest` processes"),
        },
      );
    } else {
      summary = await ingestDataset(rt.store, queue, common);
    }
    bar.stop();
    rt.log.info({ ...summary }, "ingest done");
    process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : describeIngest(summary));
    return summary;
  } finally {
    await rt.shutdown.run();
  }
}

export function describeIngest(s: IngestSummary): string {
  const { listed, hashed } = s.splitSource;
  const source =
    hashed === 0
      ? "all from the dataset's split lists"
      : listed === 0
        ? "none listed by the dataset: assigned 80/10/10 by a hash of each file name"
        : `${listed} from the dataset's split lists, ${hashed} unlisted assigned 80/10/10 by file-name hash`;
  return (
    `ingested ${s.dataset}: ${s.images} images, ${s.captions} captions, ${s.duplicates} duplicate files\n` +
    `  splits: train ${s.splits.train}, val ${s.splits.val}, test ${s.splits.test} (${source})\n` +
    `  issues: ${s.issues.malformed} malformed, ${s.issues["missing-image"]} missing images, ${s.issues.skipped} skipped\n` +
    `  shards: ${s.shards} (${s.shardsEnqueued} enqueued, ${s.shardsAlreadyQueued} already queued, ${s.shardsAlreadyDone} already done)\n` +
    `  next: capflow status ${s.dataset}   (feature extraction needs a running \`capflow worker features\`)\n`
  );
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
