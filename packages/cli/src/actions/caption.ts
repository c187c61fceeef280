import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { CommonEnv, createQueue, createQueueEvents, startRuntime, type CaptionResult, type DecodeMethod } from "@capflow/common";
import {
  CaptionJobRequest,
  captionBatchStatus,
  enqueueImageCaption,
  openCaptionBatchResults,
  storeImage,
  submitCaptionBatch,
  type DecodeChoice,
} from "@capflow/api";
import { progress } from "./progress.ts";

/**
 * `capflow caption`: the same submission code as the HTTP API, driven from the command line against
 * the configured Redis and store (a running caption worker does the work).
 */
export interface CaptionCommandOptions {
  model: string;
  method: DecodeMethod;
  beamWidth: number;
}

/** `capflow caption <image...>`: stores each file, enqueues it, prints `file: caption` as each finishes. */
export async function captionImagesCommand(files: string[], opts: CaptionCommandOptions): Promise<number> {
  const rt = await startRuntime("caption", CommonEnv);
  try {
    const queue = createQueue("captions", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const events = createQueueEvents("captions", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue events", () => events.close());
    await events.waitUntilReady();
    const decode: DecodeChoice = { model: opts.model, method: opts.method, beamWidth: opts.beamWidth };
    let failed = 0;
    await Promise.all(
      files.map(async (file) => {
        try {
          const image = await storeImage(rt.store, await fs.readFile(file));
          const job = await enqueueImageCaption(queue, image, decode);
          const result = (await job.waitUntilFinished(events)) as CaptionResult;
          process.stdout.write(`${file}: ${result.caption}\n`);
        } catch (err) {
          failed++;
          process.stdout.write(`${file}: ERROR ${(err as Error).message}\n`);
        }
      }),
    );
    return failed;
  } finally {
    await rt.shutdown.run();
  }
}

/** `capflow caption --bulk <dataset>`: submits, shows progress by shard, writes the results. */
export async function captionBulkCommand(
  dataset: string,
  opts: CaptionCommandOptions & { split?: "train" | "val" | "test"; out?: string; pollMs?: number },
): Promise<string> {
  const rt = await startRuntime("caption", CommonEnv);
  try {
    const queue = createQueue("caption-bulk", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const deps = { store: rt.store, queue };
    const req = CaptionJobRequest.parse({
      dataset,
      split: opts.split,
      model: opts.model,
      method: opts.method,
      beamWidth: opts.beamWidth,
    });
    const { id, shards, images } = await submitCaptionBatch(deps, req);
    rt.log.info({ id, dataset, shards, images }, "caption job submitted");
    const bar = progress(`caption ${dataset}`);
    for (;;) {
      const status = await captionBatchStatus(deps, id);
      bar.update(status.shards.done + status.shards.failed, status.shards.total);
      if (status.status === "done") break;
      if (status.status === "failed" || status.status === "cancelled") {
        bar.stop();
        const reasons = status.failures.map((f) => `  ${f.shardId}: ${f.reason}`).join("\n");
        throw new Error(
          `caption job ${id} ${status.status}\n${reasons}\nretry: POST /v1/caption-jobs/${id}/retry`,
        );
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1_000));
    }
    bar.stop();
    const results = await openCaptionBatchResults(deps, id);
    if (opts.out) await pipeline(results, createWriteStream(opts.out));
    else await pipeline(results, process.stdout, { end: false });
    const final = await captionBatchStatus(deps, id);
    process.stderr.write(
      `caption job ${id}: ${final.captioned} of ${final.images} images captioned${opts.out ? `, results in ${opts.out}` : ""}\n`,
    );
    return id;
  } finally {
    await rt.shutdown.run();
  }
}
