import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import {
  CommonEnv,
  createQueue,
  createQueueEvents,
  NotFoundError,
  readDatasetInfo,
  readModelPointer,
  startRuntime,
  type CaptionResult,
  type DecodeMethod,
  type DatasetInfo,
  type ModelPointer,
  type Runtime,
} from "@capflow/common";
import {
  CaptionJobRequest,
  captionBatchStatus,
  enqueueImageCaption,
  featureProgress,
  listDatasets,
  listModels,
  openCaptionBatchResults,
  storeImage,
  submitCaptionBatch,
  type DecodeChoice,
} from "@capflow/api";
import { progress } from "./progress.ts";

/**
 * `capflow caption`: the same submission code as the HTTP API, driven from the command line against
 * the configured Redis and store (a running caption worker does the work). Data goes to stdout,
 * everything else (progress, waiting notices) to stderr.
 */
export interface CaptionCommandOptions {
  model: string;
  method: DecodeMethod;
  beamWidth: number;
  /** Single images: JSON lines instead of a table. */
  json?: boolean;
}

/** Files stored and enqueued at once; bounds open files and the listeners waiting on queue events. */
const IN_FLIGHT = 32;

export interface ImageCaptionLine {
  file: string;
  caption?: string;
  logProb?: number;
  modelVersion?: string;
  method?: string;
  error?: string;
}

/**
 * `capflow caption <image...>`: one line per file, in the order given (a table, or JSON lines with
 * --json), each printed as soon as it and every file before it are done. Returns the failures.
 */
export async function captionImagesCommand(
  files: string[],
  opts: CaptionCommandOptions,
  out: (line: string) => void = (l) => process.stdout.write(l),
): Promise<number> {
  const rt = await startRuntime("caption", CommonEnv, { signals: false });
  try {
    const queue = createQueue("captions", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const events = createQueueEvents("captions", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue events", () => events.close());
    // Job.waitUntilFinished adds a listener per waiting job to the queue and its events; IN_FLIGHT
    // bounds them, so the default cap of 10 only produced MaxListenersExceededWarning beyond 10 files.
    queue.setMaxListeners(IN_FLIGHT + 10);
    events.setMaxListeners(IN_FLIGHT + 10);
    await events.waitUntilReady();
    const noWorker = await warnIfNoWorker(rt, "captions", "capflow worker captions");
    const decode: DecodeChoice = { model: opts.model, method: opts.method, beamWidth: opts.beamWidth };
    const caption = async (file: string): Promise<ImageCaptionLine> => {
      try {
        const image = await storeImage(rt.store, await fs.readFile(file));
        const job = await enqueueImageCaption(queue, image, decode);
        const r = (await job.waitUntilFinished(events)) as CaptionResult;
        return {
          file,
          caption: r.caption,
          logProb: r.logProb,
          modelVersion: r.modelVersion,
          method: r.method,
        };
      } catch (err) {
        return { file, error: (err as Error).message.split("\n")[0]! };
      }
    };
    const width = Math.min(60, Math.max(4, ...files.map((f) => f.length)));
    if (!opts.json) out(`${"file".padEnd(width)}  caption\n`);
    // Results arrive in any order; print them in input order, each once every earlier one is out.
    const results: Array<Promise<ImageCaptionLine>> = [];
    let next = 0;
    const start = () => {
      if (next < files.length) results.push(caption(files[next++]!));
    };
    for (let i = 0; i < IN_FLIGHT; i++) start();
    let failed = 0;
    for (let i = 0; i < files.length; i++) {
      const line = await results[i]!;
      start();
      if (line.error) failed++;
      out(opts.json ? `${JSON.stringify(line)}\n` : tableRow(line, width));
    }
    noWorker?.();
    return failed;
  } finally {
    await rt.shutdown.run();
  }
}

function tableRow(l: ImageCaptionLine, width: number): string {
  const text = l.error ? `ERROR ${l.error}` : `${l.caption}   (logProb ${l.logProb?.toFixed(2)})`;
  return `${l.file.padEnd(width)}  ${text}\n`;
}

/**
 * Says on stderr, right away and every 30 s, that no worker takes the queue's jobs, instead of a silent
 * wait (608 s once, with a second Redis started in another folder). Returns the function that stops it.
 */
async function warnIfNoWorker(rt: Runtime, queueName: "captions" | "caption-bulk", start: string) {
  const queue = createQueue(queueName, { connection: rt.redis, prefix: rt.prefix });
  rt.shutdown.add(`${queueName} worker check`, () => queue.close());
  const check = async () => {
    if ((await queue.getWorkersCount()) === 0)
      process.stderr.write(
        `capflow: no caption worker is connected to ${rt.redisUrl} (queue prefix ${rt.prefix}): ` +
          `waiting for one; start \`${start}\` or \`capflow up\`\n`,
      );
  };
  await check();
  const timer = setInterval(() => void check().catch(() => {}), 30_000);
  timer.unref();
  rt.shutdown.add("worker check timer", async () => clearInterval(timer));
  return () => clearInterval(timer);
}

/** A bulk job cannot start yet or at all: the message says exactly what is missing. */
export class BulkNotReadyError extends Error {
  override name = "BulkNotReadyError";
}

/**
 * Before submitting: the dataset and the model exist, and every shard has features from the model's
 * encoder. While shards are still queued or running it waits, with progress; a failed or lost shard,
 * or no feature worker at all, ends it with what to run.
 */
export async function waitForBulkFeatures(
  rt: Runtime,
  dataset: string,
  model: string,
  opts: { pollMs?: number; noWorkerGraceMs?: number } = {},
): Promise<{ info: DatasetInfo; pointer: ModelPointer }> {
  let info: DatasetInfo;
  try {
    info = await readDatasetInfo(rt.store, dataset);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    const known = await listDatasets(rt.store);
    throw new BulkNotReadyError(
      `no ingested dataset named "${dataset}" in ${rt.store.location}: ` +
        (known.length ? `datasets here: ${known.join(", ")}` : "none ingested yet (capflow ingest <dir>)"),
      { cause: err },
    );
  }
  let pointer: ModelPointer;
  try {
    pointer = await readModelPointer(rt.store, model);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    const known = (await listModels(rt.store)).map((m) => m.name);
    throw new BulkNotReadyError(
      `no model published as "${model}": ` +
        (known.length
          ? `published: ${known.join(", ")} (--model <name>)`
          : `train one first: capflow train --dataset ${dataset} --publish-as ${model}`),
      { cause: err },
    );
  }
  const queue = createQueue("features", { connection: rt.redis, prefix: rt.prefix });
  rt.shutdown.add("features queue", () => queue.close());
  const bar = progress(`features of ${dataset} for ${pointer.encoderId}`);
  let idleSince: number | undefined;
  try {
    for (;;) {
      const p = await featureProgress(rt.store, queue, info, pointer.encoderId);
      const { done, total, failed, missing, queued, active } = { ...p.shards };
      if (done === total) return { info, pointer };
      bar.update(done, total);
      if (failed + missing > 0) {
        const lines = [
          ...p.failures.slice(0, 5).map((f) => `  ${f.shardId}: failed: ${f.reason}`),
          ...p.missing.slice(0, 5).map((s) => `  ${s}: no features and no job (lost with Redis?)`),
        ];
        throw new BulkNotReadyError(
          `${dataset}: ${total - done} of ${total} shards have no features from ${pointer.encoderId} ` +
            `(the encoder of model "${model}"): ${failed} failed, ${missing} not queued, ${queued + active} in progress\n` +
            `${lines.join("\n")}\n` +
            (failed ? "retry them: capflow queue retry-failed features\n" : "") +
            (missing ? `re-enqueue them: capflow reconcile ${dataset}\n` : "") +
            `then run this again; capflow status ${dataset} shows progress`,
        );
      }
      if ((await queue.getWorkersCount()) === 0 && active === 0) {
        idleSince ??= Date.now();
        if (Date.now() - idleSince >= (opts.noWorkerGraceMs ?? 30_000))
          throw new BulkNotReadyError(
            `${dataset}: ${total - done} of ${total} shards still wait for features and no feature worker ` +
              `is connected to ${rt.redisUrl}: start \`capflow worker features\` (or \`capflow up\`), then run this again`,
          );
      } else idleSince = undefined;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1_000));
    }
  } finally {
    bar.stop();
  }
}

/** `capflow caption --bulk <dataset>`: waits for features, submits, shows progress, writes the results. */
export async function captionBulkCommand(
  dataset: string,
  opts: CaptionCommandOptions & {
    split?: "train" | "val" | "test";
    out?: string;
    pollMs?: number;
    noWorkerGraceMs?: number;
  },
): Promise<string> {
  const rt = await startRuntime("caption", CommonEnv, { signals: false });
  try {
    await waitForBulkFeatures(rt, dataset, opts.model, opts);
    const queue = createQueue("caption-bulk", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("queue", () => queue.close());
    const deps = { store: rt.store, queue, redis: rt.redis };
    const req = CaptionJobRequest.parse({
      dataset,
      split: opts.split,
      model: opts.model,
      method: opts.method,
      beamWidth: opts.beamWidth,
    });
    const { id, shards, images } = await submitCaptionBatch(deps, req);
    rt.log.info({ id, dataset, shards, images }, "caption job submitted");
    process.stderr.write(`caption job ${id}: ${images} images in ${shards} shards\n`);
    const noWorker = await warnIfNoWorker(rt, "caption-bulk", "capflow worker captions");
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
    noWorker();
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
