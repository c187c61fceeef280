import fs from "node:fs";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { parseRedisNode, type RedisSettings } from "./redis-config.ts";

/**
 * Connections follow BullMQ's going-to-production rules: a worker's blocking connection must retry
 * forever (`maxRetriesPerRequest: null`) or it stops for good after a Redis blip; a producer fails
 * fast (`enableOfflineQueue: false`) so an API request gets an error instead of hanging.
 */
export type ConnectionRole = "worker" | "producer";

/** A connection to one server (standalone or the Sentinel-managed primary) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

const retryStrategy = (times: number) => Math.min(times * 200, 2_000);

/**
 * After a failover the old primary turns replica and answers writes with READONLY; reconnecting
 * (and resending the command) reaches the new primary through Sentinel or the cluster's slot map.
 */
const reconnectOnError = (err: Error): 2 | false => (err.message.startsWith("READONLY") ? 2 : false);

export function redisOptions(role: ConnectionRole): RedisOptions {
  return role === "worker"
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy, reconnectOnError }
    : {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        retryStrategy,
        reconnectOnError,
        connectTimeout: 5_000,
      };
}

/**
 * Connections made by the factories below and not yet ended, each with what it is and where it was
 * opened; the test suite's leak guard fails a test file that leaves one open. A connection leaves the
 * set on "end", which ioredis emits once `disconnect()`/`quit()` has closed the socket for good (one
 * closed while it waited to reconnect never emits it and stays: the guard reads its closing flag).
 */
export const openRedisConnections = new Map<RedisClient, string>();

function tracked<C extends RedisClient>(client: C, what: string): C {
  // The first frame outside common: the caller that owns the connection (and must close it).
  const site = new Error().stack
    ?.split("\n")
    .slice(1)
    .find((line) => !/[\\/]common[\\/]src[\\/]/.test(line))
    ?.trim()
    .replace(/^at /, "");
  openRedisConnections.set(client, site ? `${what}, opened at ${site}` : what);
  client.once("end", () => openRedisConnections.delete(client));
  return client;
}

/** A standalone connection from one URL (the embedded Redis, tests, tools). */
export function createRedis(url: string, role: ConnectionRole): Redis {
  const redis = new Redis(url, redisOptions(role));
  return tracked(redis, `${role} connection to ${where(redis)}`);
}

/**
 * The one connection factory: the mode, credentials and TLS of `settings` decide what is built.
 * BullMQ takes the result as is (a `Cluster` included).
 */
export function connectRedis(settings: RedisSettings, role: ConnectionRole): RedisClient {
  const client = buildClient(settings, role);
  return tracked(client, `${role} connection to ${where(client)} (${settings.mode})`);
}

function buildClient(settings: RedisSettings, role: ConnectionRole): RedisClient {
  const nodes = settings.urls.map(parseRedisNode);
  const first = nodes[0];
  if (!first) throw new Error("no Redis URL configured");
  const ca = settings.tlsCaFile ? fs.readFileSync(settings.tlsCaFile) : undefined;
  const tls = (on: boolean) => (on ? { ...(ca ? { ca } : {}) } : undefined);
  const auth = {
    username: settings.username ?? first.username,
    password: settings.password ?? first.password,
  };
  const base = redisOptions(role);
  switch (settings.mode) {
    case "standalone":
      return new Redis({
        ...base,
        host: first.host,
        port: first.port,
        db: first.db,
        tls: tls(first.tls),
        ...auth,
      });
    case "sentinel":
      return new Redis({
        ...base,
        sentinels: nodes.map((n) => ({ host: n.host, port: n.port })),
        name: settings.sentinelName,
        role: "master",
        ...auth,
        sentinelUsername: settings.sentinelUsername,
        sentinelPassword: settings.sentinelPassword,
        // TLS to the sentinels follows their URLs; to the primary, the same (one CA for both).
        enableTLSForSentinelMode: first.tls,
        sentinelTLS: tls(first.tls),
        tls: tls(first.tls),
        sentinelRetryStrategy: retryStrategy,
        // No `failoverDetector`: with it, a primary killed on idle cores left the producer connection
        // refusing writes for over 120 s after the sentinels had promoted the replica (the Sentinel
        // chaos test, twice); without it the next reconnect asks the sentinels and writes resume
        // 0.1 s after the promotion (docs/reliability.md, "Redis topologies").
      });
    case "cluster": {
      const { enableOfflineQueue, ...perNode } = base;
      const options: ClusterOptions = {
        redisOptions: { ...perNode, tls: tls(first.tls), ...auth },
        clusterRetryStrategy: retryStrategy,
        enableReadyCheck: true,
        ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      };
      return new Cluster(
        nodes.map((n) => ({ host: n.host, port: n.port })),
        options,
      );
    }
  }
}

/**
 * A second connection like `client` for a blocking reader (QueueEvents): it must retry forever and
 * queue commands while it reconnects. Cluster and standalone duplicate differently.
 */
export function duplicateForBlocking(client: RedisClient): RedisClient {
  const copy =
    client instanceof Cluster
      ? client.duplicate(undefined, {
          ...client.options,
          enableOfflineQueue: true,
          redisOptions: { ...client.options.redisOptions, maxRetriesPerRequest: null },
        })
      : client.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
  return tracked(copy, `blocking connection to ${where(copy)}`);
}

export class RedisPolicyError extends Error {
  override name = "RedisPolicyError";
}

/** The servers that hold data: every primary of a cluster, else the one server. */
function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes("master") : [client];
}

/** `maxmemory_policy` from an `INFO memory` reply, or undefined when it is not there. */
export function policyFromInfo(info: string): string | undefined {
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
}

/**
 * BullMQ keeps its job state in ordinary keys: a Redis that evicts keys under memory pressure
 * silently loses jobs. Refuse to run on one. Reads `INFO memory`, not `CONFIG GET`: hosted Redis
 * often disables CONFIG (every role used to exit with "unknown command 'config'" there). When the
 * policy cannot be read at all (INFO denied too), warn and go on: refusing would lock out a Redis
 * that may well be right.
 */
export async function assertNoEviction(
  client: RedisClient,
  warn: (msg: string, fields: Record<string, unknown>) => void = (msg, f) =>
    process.emitWarning(`${msg} ${JSON.stringify(f)}`),
): Promise<void> {
  await waitReady(client);
  for (const node of dataNodes(client)) {
    const where = `${node.options.host}:${node.options.port}`;
    let policy: string | undefined;
    try {
      policy = policyFromInfo(await node.info("memory"));
    } catch (err) {
      warn("could not read Redis maxmemory-policy; make sure it is noeviction", {
        node: where,
        err: (err as Error).message,
      });
      continue;
    }
    if (policy === undefined) {
      warn("Redis INFO memory has no maxmemory_policy; make sure it is noeviction", { node: where });
      continue;
    }
    if (policy !== "noeviction") {
      throw new RedisPolicyError(
        `Redis maxmemory-policy is "${policy}" on ${where}, capflow needs "noeviction": an evicting Redis silently drops queued jobs.\n` +
          `Fix: run CONFIG SET maxmemory-policy noeviction (and set "maxmemory-policy noeviction" in redis.conf), ` +
          `or choose the noeviction policy in your hosted Redis's parameter group.`,
      );
    }
  }
}

/** Thrown when Redis does not answer in time; one line naming the URL and the last connection error. */
export class RedisUnreachableError extends Error {
  override name = "RedisUnreachableError";
}

/** `redis://user:secret@host:6379/0` → `redis://host:6379/0`: the message may be printed or logged. */
function where(redis: RedisClient): string {
  if (redis instanceof Cluster) return "the Redis Cluster";
  const { host, port, tls } = redis.options;
  return `${tls ? "rediss" : "redis"}://${host ?? "127.0.0.1"}:${port ?? 6379}`;
}

/**
 * A fail-fast connection refuses commands until it is ready; wait for that, or fail with one clear
 * line. Without an error listener ioredis printed "[ioredis] Unhandled error event" with a stack trace
 * on every reconnect attempt (10 of them before the old timeout message, seen with redis://127.0.0.1:1);
 * this one listens while it waits and reports the last error instead.
 */
export async function waitReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
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
