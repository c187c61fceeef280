import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Redis } from "ioredis";
import { startEmbeddedRedis, type EmbeddedRedis } from "./embedded-redis.ts";

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
