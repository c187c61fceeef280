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

/** Thrown when Redis does not answer in time; one line naming the URL and the last connection error. */
export class RedisUnreachableError extends Error {
  override name = "RedisUnreachableError";
}

/** `redis://user:secret@host:6379/0` → `redis://host:6379/0`: the message may be printed or logged. */
function where(redis: Redis): string {
  const { host, port, tls } = redis.options;
  return `${tls ? "rediss" : "redis"}://${host ?? "127.0.0.1"}:${port ?? 6379}`;
}

/**
 * A fail-fast connection refuses commands until it is ready; wait for that, or fail with one clear
 * line. Without an error listener ioredis printed "[ioredis] Unhandled error event" with a stack trace
 * on every reconnect attempt (10 of them before the old timeout message, seen with redis://127.0.0.1:1);
 * this one listens while it waits and reports the last error instead.
 */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  let lastError: string | undefined;
  const onError = (err: Error) => {
    lastError = (err as NodeJS.ErrnoException).code ?? err.message;
  };
  redis.on("error", onError);
  try {
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new RedisUnreachableError(
            `cannot reach Redis at ${where(redis)} (${lastError ?? `status ${redis.status}`}) after ${timeoutMs / 1000} s: ` +
              `is it running? (CAPFLOW_REDIS_URL; unset, capflow starts its own)`,
          ),
        );
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
    if (redis.status === "wait") redis.connect().catch(() => {});
    await ready;
  } finally {
    redis.off("error", onError);
  }
}
