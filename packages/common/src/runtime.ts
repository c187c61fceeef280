import type { z } from "zod";
import { CommonEnv, redactEnv } from "./config/env.ts";
import { parseEnv } from "./config/parse-env.ts";
import { redactUrl } from "./config/redact.ts";
import { createLogger, type Logger } from "./log.ts";
import { enableDefaultMetrics } from "./ops/metrics.ts";
import { startOpsServer, type Check } from "./ops/ops-server.ts";
import { assertNoEviction, connectRedis, type RedisClient } from "./queue/redis.ts";
import { describeRedis, type RedisSettings } from "./queue/redis-config.ts";
import { resolveRedisSettings } from "./queue/redis-endpoint.ts";
import { Shutdown } from "./shutdown.ts";
import { createStore } from "./store/index.ts";
import type { ObjectStore } from "./store/object-store.ts";

export interface Runtime<E extends CommonEnv = CommonEnv> {
  role: string;
  env: E;
  log: Logger;
  /** The configured (or embedded) URL; with `redisSettings`, what a child process needs. */
  redisUrl: string;
  redisSettings: RedisSettings;
  /** Producer connection: fails fast. Workers create their own with `workerConnection()`. */
  redis: RedisClient;
  workerConnection(): RedisClient;
  prefix: string;
  store: ObjectStore;
  shutdown: Shutdown;
  /** Starts /healthz, /readyz, /metrics; returns the base URL. */
  serveOps(liveness?: Check): Promise<string>;
}

/**
 * Boots a role: parses its environment (failing with the variable's name), connects Redis (the
 * configured one or the embedded one) and refuses an evicting Redis, opens the store, and wires
 * graceful shutdown. Every process starts through here.
 */
export async function startRuntime<S extends z.ZodType<CommonEnv>>(
  role: string,
  schema: S,
  opts: { source?: NodeJS.ProcessEnv; signals?: boolean } = {},
): Promise<Runtime<z.infer<S>>> {
  const env = parseEnv(schema, opts.source ?? process.env, role) as z.infer<S>;
  const log = createLogger(role, env.CAPFLOW_LOG_LEVEL);
  const shutdown = new Shutdown(log, env.CAPFLOW_SHUTDOWN_TIMEOUT_MS);
  if (opts.signals !== false) shutdown.installSignalHandlers();
  enableDefaultMetrics(role);

  const { settings, endpoint } = await resolveRedisSettings(env);
  if (endpoint.owned) {
    log.info({ url: redactUrl(endpoint.url) }, "started embedded redis-server");
    shutdown.add("embedded redis", () => endpoint.owned!.stop());
  }
  const redis = connectRedis(settings, "producer");
  // Until the first "ready", waitReady reports an unreachable Redis in one line; after it, each new
  // kind of error is logged once (not once per reconnect attempt) until the connection recovers.
  let everReady = false;
  let lastError: string | undefined;
  redis.on("ready", () => {
    everReady = true;
    lastError = undefined;
  });
  redis.on("error", (err) => {
    if (everReady && err.message !== lastError) log.warn({ err: err.message }, "redis connection error");
    lastError = err.message;
  });
  shutdown.add("redis", async () => {
    redis.disconnect();
  });
  log.info({ redis: describeRedis(settings) }, "redis");
  try {
    await assertNoEviction(redis, (msg, fields) => log.warn(fields, msg));
  } catch (err) {
    // Close what was opened (the connection, an embedded Redis) before failing the boot.
    await shutdown.run();
    throw err;
  }

  const store = createStore(env);
  shutdown.add("store", () => store.close());
  log.info({ config: redactEnv(env as Record<string, unknown>), store: store.location }, "configured");

  const workerConnections: RedisClient[] = [];
  shutdown.add("worker connections", async () => {
    for (const c of workerConnections) c.disconnect();
  });

  return {
    role,
    env,
    log,
    redisUrl: endpoint.url,
    redisSettings: settings,
    redis,
    prefix: env.CAPFLOW_QUEUE_PREFIX,
    store,
    shutdown,
    workerConnection() {
      const c = connectRedis(settings, "worker");
      c.on("error", (err) => log.warn({ err: err.message }, "redis worker connection error"));
      workerConnections.push(c);
      return c;
    },
    async serveOps(liveness) {
      const { app, url } = await startOpsServer({
        host: env.CAPFLOW_OPS_HOST,
        port: env.CAPFLOW_OPS_PORT,
        readiness: {
          redis: async () => void (await redis.ping()),
          store: () => store.ping(),
        },
        liveness,
      });
      shutdown.add("ops server", () => app.close());
      log.info({ url }, "ops server: /healthz /readyz /metrics");
      return url;
    },
  };
}

export { CommonEnv };
