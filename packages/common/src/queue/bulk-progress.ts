import type { RedisClient } from "./redis.ts";

/**
 * A bulk caption job's progress as counters in Redis, so that a status poll costs the same few
 * commands whatever the number of shards. Before, each poll did `getJob` + `getState` per shard:
 * ~2k Redis calls per poll for COCO, ~51.6k for a 3.3M-image set, every second the CLI polled.
 *
 * Per batch (one hash tag, so a Redis Cluster keeps them on one node):
 * - `meta`   hash: `total` shards, `images`, `captioned`, `failedImages`;
 * - `done`   set of shard ids finished (a redone shard is counted once: SADD decides);
 * - `active` set of shard ids being worked on;
 * - `failed` hash shard id → reason, for shards that failed their last attempt.
 * The keys expire with the queue's retention of finished shards (7 days); the store keeps the results.
 */
export const BULK_PROGRESS_TTL_SECONDS = 7 * 24 * 3600;

const keysOf = (prefix: string, batchId: string) => {
  const base = `${prefix}:bulk:{${batchId}}`;
  return {
    meta: `${base}:meta`,
    done: `${base}:done`,
    active: `${base}:active`,
    failed: `${base}:failed`,
  };
};
const order = (k: ReturnType<typeof keysOf>) => [k.meta, k.done, k.active, k.failed];

// Counts a shard once however many times it completes (BullMQ delivers at least once), and takes it
// out of the active and failed sets (a retried shard that now succeeds is no longer failed).
const DONE_SCRIPT = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'captioned', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'failedImages', ARGV[3])
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`;

/** Written at submit, before the shard jobs: a status poll never finds jobs without counters. */
export async function initBulkProgress(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  counts: { shards: number; images: number },
): Promise<void> {
  const k = keysOf(prefix, batchId);
  await redis
    .multi()
    .hset(k.meta, { total: counts.shards, images: counts.images, captioned: 0, failedImages: 0 })
    .expire(k.meta, BULK_PROGRESS_TTL_SECONDS)
    .exec();
}

export async function markShardActive(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  shardId: string,
): Promise<void> {
  const k = keysOf(prefix, batchId);
  await redis
    .multi()
    .sadd(k.active, shardId)
    .expire(k.active, BULK_PROGRESS_TTL_SECONDS)
    .hdel(k.failed, shardId)
    .exec();
}

export async function markShardDone(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  shardId: string,
  counts: { captioned: number; failed: number },
): Promise<void> {
  const k = keysOf(prefix, batchId);
  await redis.eval(DONE_SCRIPT, 4, ...order(k), shardId, counts.captioned, counts.failed);
  await redis.expire(k.done, BULK_PROGRESS_TTL_SECONDS);
}

/** A shard that failed its last attempt (or was retried: `reason` undefined clears it). */
export async function markShardFailed(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  shardId: string,
  reason: string | undefined,
): Promise<void> {
  const k = keysOf(prefix, batchId);
  const tx = redis.multi().srem(k.active, shardId);
  if (reason === undefined) tx.hdel(k.failed, shardId);
  else tx.hset(k.failed, shardId, reason.slice(0, 500)).expire(k.failed, BULK_PROGRESS_TTL_SECONDS);
  await tx.exec();
}

export interface BulkProgress {
  total: number;
  images: number;
  done: number;
  active: number;
  failed: number;
  captioned: number;
  failedImages: number;
  /** Up to `maxReasons` failed shards with their reasons. */
  failures: Array<{ shardId: string; reason: string }>;
}

/**
 * One round trip of five commands, whatever the batch size. Undefined when the counters are gone
 * (a batch older than its retention, or Redis lost its data): the caller falls back to the queue.
 */
export async function readBulkProgress(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  maxReasons = 100,
): Promise<BulkProgress | undefined> {
  const k = keysOf(prefix, batchId);
  const replies = await redis
    .multi()
    .hgetall(k.meta)
    .scard(k.done)
    .scard(k.active)
    .hlen(k.failed)
    .hscan(k.failed, 0, "COUNT", maxReasons)
    .exec();
  if (!replies) throw new Error("bulk progress: transaction aborted");
  for (const [err] of replies) if (err) throw err;
  const meta = replies[0]![1] as Record<string, string>;
  if (meta.total === undefined) return undefined;
  const [, flat] = replies[4]![1] as [string, string[]];
  const failures: BulkProgress["failures"] = [];
  for (let i = 0; i + 1 < flat.length && failures.length < maxReasons; i += 2)
    failures.push({ shardId: flat[i]!, reason: flat[i + 1]! });
  return {
    total: Number(meta.total),
    images: Number(meta.images),
    done: replies[1]![1] as number,
    active: replies[2]![1] as number,
    failed: replies[3]![1] as number,
    captioned: Number(meta.captioned),
    failedImages: Number(meta.failedImages),
    failures,
  };
}

/** Drops a batch's counters (obliterate-style cleanup; cancelled batches keep theirs until expiry). */
export async function deleteBulkProgress(redis: RedisClient, prefix: string, batchId: string): Promise<void> {
  await redis.del(...order(keysOf(prefix, batchId)));
}
