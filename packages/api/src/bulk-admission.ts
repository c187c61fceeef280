import {
  captionShardJobId,
  keys,
  NotFoundError,
  readDatasetInfo,
  waitReady,
  type ObjectStore,
  type RedisClient,
  type TypedQueue,
} from "@capflow/common";
import type { BulkLimits } from "./api-env.ts";
import { ApiProblem } from "./problem.ts";

interface InFlight {
  dataset: string;
  lastJobId: string;
  at: number;
}

/**
 * Admission for bulk caption jobs (`POST /v1/caption-jobs`): every accepted batch puts one
 * `caption-bulk` job per shard into Redis, so 200 POSTs made 5,800 jobs and +6.7 MiB under
 * `noeviction` (where a full Redis stops every queue). Refused with 429 past
 * `maxInFlightPerDataset` batches in flight on the dataset or `maxInFlight` in all, and with 413 past
 * `maxImages` images in one batch. Redis then holds at most maxInFlight × (maxImages / shard size)
 * shard jobs of bulk work.
 *
 * In flight means the batch's last shard job is still waiting or running: shards are enqueued in
 * order and taken first-in first-out, so when the last one has finished, at most the caption
 * workers' bulk slots of the batch are still running. Cancelled batches (waiting jobs removed) and
 * batches whose jobs retention removed leave at once. The batches in flight are a Redis hash
 * (bounded by maxInFlight); admission is serialised within an API process, so N API replicas may
 * overshoot a limit by at most N - 1 batches.
 */
export class BulkAdmission {
  private readonly key: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      redis: RedisClient;
      prefix: string;
      store: ObjectStore;
      queue: TypedQueue<"caption-bulk">;
      limits: BulkLimits;
    },
  ) {
    this.key = `capflow:${deps.prefix}:bulk:in-flight`;
  }

  /**
   * Runs `submit` if the batch is admitted and records it as in flight; throws 413/429 otherwise.
   * A dataset that does not exist is left to `submit` (its 404).
   */
  async admit<T extends { id: string }>(
    req: { dataset: string; split?: "train" | "val" | "test" },
    submit: () => Promise<T>,
  ): Promise<T> {
    const run = this.chain.then(() => this.admitNow(req, submit));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async admitNow<T extends { id: string }>(
    req: { dataset: string; split?: "train" | "val" | "test" },
    submit: () => Promise<T>,
  ): Promise<T> {
    const { limits } = this.deps;
    try {
      const info = await readDatasetInfo(this.deps.store, req.dataset);
      const images = req.split ? info.splits[req.split] : info.images;
      if (images > limits.maxImages)
        throw new ApiProblem(
          413,
          "too_large",
          `${req.dataset} has ${images} images; a caption job takes at most ${limits.maxImages} (caption a split)`,
        );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    const inFlight = await this.inFlight();
    const onDataset = inFlight.filter((b) => b.dataset === req.dataset).length;
    if (onDataset >= limits.maxInFlightPerDataset || inFlight.length >= limits.maxInFlight) {
      const which =
        onDataset >= limits.maxInFlightPerDataset
          ? `${onDataset} caption jobs on ${req.dataset} are in flight (at most ${limits.maxInFlightPerDataset})`
          : `${inFlight.length} caption jobs are in flight (at most ${limits.maxInFlight})`;
      throw new ApiProblem(429, "too_many_jobs", `${which}; retry when one finishes`, {
        "retry-after": "30",
      });
    }
    const submitted = await submit();
    const batch = await this.lastShard(submitted.id);
    if (batch) {
      const entry: InFlight = { dataset: req.dataset, lastJobId: batch, at: Date.now() };
      await this.deps.redis.hset(this.key, submitted.id, JSON.stringify(entry));
    }
    return submitted;
  }

  /** Batches still in flight; forgets the finished ones. */
  async inFlight(): Promise<InFlight[]> {
    await waitReady(this.deps.redis);
    const all = await this.deps.redis.hgetall(this.key);
    const live: InFlight[] = [];
    for (const [batchId, raw] of Object.entries(all)) {
      let entry: InFlight | undefined;
      try {
        entry = JSON.parse(raw) as InFlight;
      } catch {
        entry = undefined;
      }
      const state = entry ? await this.deps.queue.getJobState(entry.lastJobId) : "unknown";
      if (entry && state !== "completed" && state !== "failed" && state !== "unknown") live.push(entry);
      else await this.deps.redis.hdel(this.key, batchId);
    }
    return live;
  }

  /** Forgets a batch (cancelled, expired). */
  async forget(batchId: string): Promise<void> {
    await waitReady(this.deps.redis);
    await this.deps.redis.hdel(this.key, batchId);
  }

  private async lastShard(batchId: string): Promise<string | undefined> {
    const batch = await this.deps.store
      .get(keys.captionBatch(batchId))
      .then((b) => JSON.parse(b.toString("utf8")) as { shards: string[] })
      .catch(() => undefined);
    const last = batch?.shards.at(-1);
    return last === undefined ? undefined : captionShardJobId(batchId, last);
  }
}
