import { Redis, type RedisOptions } from "ioredis";

/**
 * Connections follow BullMQ's going-to-production rules: a worker's blocking connection must retry
 * forever (`maxRetriesPerRequest: null`) or it stops for good after a Redis blip; a producer fails
 * fast (`enableOfflineQueue: false`) so an API request gets an error instead of hanging.
 */
export type ConnectionRole = "worker" | "producer";

export function redisOptions(role: ConnectionRole): RedisOptions {
  const retryStrategy = (times: number) => Math.min(times * 200, 2_000);
  return role === "worker"
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy, connectTimeout: 5_000 };
}

export function createRedis(url: string, role: ConnectionRole): Redis {
  return new Redis(url, redisOptions(role));
}

export class RedisPolicyError extends Error {
  override name = "RedisPolicyError";
}

/**
 * BullMQ keeps its job state in ordinary keys: a Redis that evicts keys under memory pressure
 * silently loses jobs. Refuse to run on one.
 */
export async function assertNoEviction(redis: Redis): Promise<void> {
  await waitReady(redis);
  const reply = (await redis.config("GET", "maxmemory-policy")) as string[];
  const policy = reply[1];
  if (policy !== "noeviction") {
    throw new RedisPolicyError(
      `Redis maxmemory-policy is "${policy}", capflow needs "noeviction": an evicting Redis silently drops queued jobs.\n` +
        `Fix: run CONFIG SET maxmemory-policy noeviction (and set "maxmemory-policy noeviction" in redis.conf).`,
    );
  }
}

/** A fail-fast connection refuses commands until it is ready; wait for that (or for a clear error). */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  if (redis.status === "wait") {
    await redis.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
    };
    redis.on("ready", onReady);
  });
}
