import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import pino from "pino";
import { createRedis, type ObjectStore } from "@capflow/common";
import { loadTf, type Encoder } from "@capflow/ml";
import { Captioner, createCaptionWorkers } from "@capflow/caption-worker";
import { redisUrl } from "./services.ts";

/**
 * The one way tests start caption workers: a Captioner on the real encoder and the model published
 * in the store (test/support/pipeline.ts preparePublishedModel), and the online and bulk workers on a
 * prefix, each on its own blocking connection.
 */
const silent = pino({ level: "silent" });

/** Batches of up to 32 images, gathered for at most 5 ms. The caller disposes it. */
export async function startCaptioner(
  store: ObjectStore,
  encoder: Encoder,
  opts: { models?: readonly string[] } = {},
): Promise<Captioner> {
  const { tf } = await loadTf();
  return new Captioner({ store, tf, log: silent, encoder, maxBatch: 32, maxWaitMs: 5, ...opts });
}

export interface CaptionWorkers {
  online: Worker;
  bulk: Worker;
  /** Closes both workers, then drops their connections. */
  close(): Promise<void>;
}

export function startCaptionWorkers(opts: {
  captioner: Captioner;
  store: ObjectStore;
  prefix: string;
  concurrency?: number;
  bulkConcurrency?: number;
}): CaptionWorkers {
  const conns: Redis[] = [];
  const { online, bulk } = createCaptionWorkers({
    captioner: opts.captioner,
    store: opts.store,
    prefix: opts.prefix,
    connect: () => {
      const c = createRedis(redisUrl(), "worker");
      conns.push(c);
      return c;
    },
    log: silent,
    concurrency: opts.concurrency ?? 8,
    bulkConcurrency: opts.bulkConcurrency ?? 2,
    maxPixels: 50_000_000,
  });
  return {
    online,
    bulk,
    async close() {
      await online.close();
      await bulk.close();
      for (const c of conns) c.disconnect();
    },
  };
}
