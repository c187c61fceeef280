import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Redis } from "ioredis";
import { startEmbeddedRedis, type EmbeddedRedis } from "./embedded-redis.ts";
import { redisSettings, type CommonEnv } from "../config/env.ts";
import { ConfigError } from "../config/parse-env.ts";
import { checkRedisSettings, type RedisSettings } from "./redis-config.ts";

export interface RedisEndpoint {
  url: string;
  /** Set when this process started the Redis and must stop it on exit. */
  owned?: EmbeddedRedis;
}

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * The configured Redis, or the embedded one under CAPFLOW_HOME: reused when another capflow process
 * already started it (so `capflow up` in one terminal and `capflow ingest` in another meet), started
 * otherwise and owned by this process.
 */
export async function resolveRedis(configuredUrl: string | undefined, home: string): Promise<RedisEndpoint> {
  if (configuredUrl) return { url: configuredUrl };
  const dir = path.resolve(home, "redis");
  const urlFile = path.join(dir, "redis.url");
  const existing = await fs.readFile(urlFile, "utf8").catch(() => undefined);
  if (existing && (await answers(existing.trim()))) return { url: existing.trim() };
  // A fresh password per start; the URL file (0600) is how other capflow processes on this machine
  // find it, so only this user can.
  const owned = await startEmbeddedRedis({ dataDir: dir, password: randomBytes(24).toString("hex") });
  await fs.writeFile(urlFile, owned.url, { mode: 0o600 });
  return {
    url: owned.url,
    owned: {
      ...owned,
      async stop() {
        await fs.rm(urlFile, { force: true });
        await owned.stop();
      },
    },
  };
}

export interface ResolvedRedis {
  settings: RedisSettings;
  endpoint: RedisEndpoint;
}

/**
 * The settings a process connects with: the configured mode and credentials, the embedded Redis
 * when nothing is configured (standalone only: a cluster or sentinels cannot be made up). Fails
 * naming the variable when the settings cannot work.
 */
export async function resolveRedisSettings(env: CommonEnv): Promise<ResolvedRedis> {
  if (env.CAPFLOW_REDIS_MODE !== "standalone" && !env.CAPFLOW_REDIS_URL)
    throw new ConfigError(
      `CAPFLOW_REDIS_URL: ${env.CAPFLOW_REDIS_MODE} mode needs the ${env.CAPFLOW_REDIS_MODE === "cluster" ? "seed nodes" : "sentinels"} as a comma-separated list of redis:// URLs`,
    );
  const endpoint = await resolveRedis(env.CAPFLOW_REDIS_URL, env.CAPFLOW_HOME);
  const settings = redisSettings(env, endpoint.url);
  const problems = checkRedisSettings(settings, env.CAPFLOW_QUEUE_PREFIX);
  if (problems.length) {
    await endpoint.owned?.stop();
    throw new ConfigError(`invalid Redis configuration\n  ${problems.join("\n  ")}`);
  }
  return { settings, endpoint };
}
