import fs from "node:fs/promises";
import path from "node:path";
import type { QueueEvents } from "bullmq";
import {
  createQueue,
  createRedis,
  freePort,
  LocalStore,
  readDatasetInfo,
  keys,
  type TypedQueue,
  createQueueEvents,
} from "@capflow/common";
import { ingestDataset, reconcileDataset, type IngestSummary } from "@capflow/ingest";
import type { Redis } from "ioredis";
import { tempDir } from "../services.ts";
import { writeJsonlDataset } from "../images.ts";
import { featureWorker, RedisControl, sleep, type CapflowProcess } from "./process-control.ts";
import { checkLedger, duplicateFeatureWrites, writeCounts } from "./ledger.ts";

/**
 * One pipeline under test: a private Redis (so it can be killed, restarted or flushed without
 * touching other tests), a local store, a jsonl dataset of drawn images, and feature workers as
 * child processes whose store writes are logged.
 */
export class PipelineFixture {
  redis!: RedisControl;
  store!: LocalStore;
  storeDir!: string;
  writeLog!: string;
  producer!: Redis;
  queue!: TypedQueue<"features">;
  readonly prefix = "chaos";
  readonly workers: CapflowProcess[] = [];
  private events: QueueEvents[] = [];
  private conns: Redis[] = [];
  dataset = "drawn";
  datasetDir!: string;

  static async create(opts: { redisUrl?: string } = {}): Promise<PipelineFixture> {
    const f = new PipelineFixture();
    const root = await tempDir("fault");
    f.redis = new RedisControl(await freePort(), path.join(root, "redis"));
    await f.redis.start();
    f.storeDir = path.join(root, "store");
    f.store = new LocalStore(f.storeDir);
    f.writeLog = path.join(root, "writes.log");
    f.producer = createRedis(opts.redisUrl ?? f.redis.url, "worker");
    // Redis is stopped on purpose in these tests: connection errors are expected, not news.
    f.producer.on("error", () => undefined);
    f.queue = createQueue("features", { connection: f.producer, prefix: f.prefix });
    // The queue re-emits its connection's errors; with no listener BullMQ prints each one
    // (an ECONNREFUSED stack trace in the test's stderr at every Redis restart).
    f.queue.on("error", () => undefined);
    return f;
  }

  /** Environment for a child pointed at this pipeline (Redis through `redisUrl`, e.g. a proxy). */
  env(extra: Record<string, string> = {}, redisUrl = this.redis.url): Record<string, string> {
    return {
      CAPFLOW_REDIS_URL: redisUrl,
      CAPFLOW_QUEUE_PREFIX: this.prefix,
      CAPFLOW_STORE: "local",
      CAPFLOW_STORE_DIR: this.storeDir,
      CAPFLOW_LOG_LEVEL: "info",
      CAPFLOW_TEST_WRITE_LOG: this.writeLog,
      ...extra,
    };
  }

  async writeDataset(n: number, bad: Record<string, Buffer> = {}): Promise<string> {
    this.datasetDir = await writeJsonlDataset(await tempDir("ds"), n, bad);
    return this.datasetDir;
  }

  ingest(shardSize: number, dataset = this.dataset): Promise<IngestSummary> {
    return ingestDataset(this.store, this.queue, {
      dataset,
      format: "jsonl-folder",
      dir: this.datasetDir,
      shardSize,
      onError: "fail",
    });
  }

  reconcile(dataset = this.dataset) {
    return reconcileDataset(this.store, this.queue, { dataset });
  }

  startWorker(extra: Record<string, string> = {}, redisUrl?: string): CapflowProcess {
    const w = featureWorker(this.env(extra, redisUrl), `features#${this.workers.length}`).start();
    this.workers.push(w);
    return w;
  }

  async encoderId(): Promise<string> {
    return JSON.parse((await this.store.get("encoders/current.json")).toString()).id as string;
  }

  /** Shards of the dataset with a committed index. */
  async doneShards(dataset = this.dataset): Promise<number> {
    const info = await readDatasetInfo(this.store, dataset);
    const encoderId = await this.encoderId().catch(() => undefined);
    if (!encoderId) return 0;
    let done = 0;
    for (const s of info.shards) if (await this.store.head(keys.featureIndex(encoderId, dataset, s))) done++;
    return done;
  }

  /** Waits until every shard has output; `onTick` may inject faults meanwhile. */
  async waitAllDone(
    timeoutMs: number,
    dataset = this.dataset,
    onTick?: () => Promise<void>,
  ): Promise<number> {
    const info = await readDatasetInfo(this.store, dataset);
    const started = Date.now();
    for (;;) {
      const done = await this.doneShards(dataset);
      if (done === info.shards.length) return Date.now() - started;
      if (Date.now() - started > timeoutMs)
        throw new Error(
          `${done}/${info.shards.length} shards done after ${timeoutMs} ms\n` +
            this.workers.map((w) => `--- ${w.label}\n${w.tail(1500)}`).join("\n"),
        );
      await onTick?.();
      await sleep(500);
    }
  }

  /** A job of the queue becomes active (and, with `progress`, has reported at least that much). */
  async waitActive(timeoutMs = 120_000, progress = 0): Promise<string> {
    const started = Date.now();
    for (;;) {
      for (const job of await this.queue.getActive()) {
        if (typeof job.progress === "number" && job.progress >= progress) return job.id!;
        if (progress === 0) return job.id!;
      }
      if (Date.now() - started > timeoutMs) throw new Error("no job became active");
      await sleep(100);
    }
  }

  /** Counts stalled events on the queue from now on. */
  async watchStalled(): Promise<{ stalled: string[] }> {
    const conn = createRedis(this.redis.url, "worker");
    conn.on("error", () => undefined);
    this.conns.push(conn);
    const events = createQueueEvents("features", { connection: conn, prefix: this.prefix });
    this.events.push(events);
    await events.waitUntilReady();
    const seen = { stalled: [] as string[] };
    events.on("stalled", ({ jobId }) => seen.stalled.push(jobId));
    return seen;
  }

  async ledger(dataset = this.dataset) {
    return checkLedger(this.store, dataset, await this.encoderId());
  }

  async duplicateWrites(): Promise<string[]> {
    return duplicateFeatureWrites(await writeCounts(this.writeLog, this.storeDir), await this.encoderId());
  }

  async writeCounts() {
    return writeCounts(this.writeLog, this.storeDir);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill()));
    for (const e of this.events) await e.close();
    for (const c of this.conns) c.disconnect();
    await this.queue.close().catch(() => undefined);
    this.producer.disconnect();
    await this.redis.stop();
    await fs.rm(path.dirname(this.storeDir), { recursive: true, force: true });
  }
}
