import { z } from "zod";

/**
 * How a process reaches Redis, as operators run it: one server (`standalone`, the default, also the
 * embedded one), a Redis Cluster (`cluster`: the URLs are seed nodes), or a Sentinel-managed primary
 * (`sentinel`: the URLs are the sentinels, `sentinelName` the primary's name). Credentials come from
 * the URL or from the variables (the variables win, so a password can live in a secret and not in a
 * URL that process listings and logs show); `rediss://` turns TLS on, `tlsCaFile` trusts a private CA.
 */
export const REDIS_MODES = ["standalone", "cluster", "sentinel"] as const;
export type RedisMode = (typeof REDIS_MODES)[number];

export interface RedisSettings {
  mode: RedisMode;
  /** One URL (standalone), the seed nodes (cluster) or the sentinels (sentinel). */
  urls: string[];
  username?: string;
  password?: string;
  tlsCaFile?: string;
  /** The name sentinels know the primary by (`sentinel monitor <name> ...`). */
  sentinelName?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

export interface RedisNode {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db: number;
}

const URL_PATTERN = /^rediss?:\/\/[^,\s]+$/;

export const RedisUrlList = z
  .string()
  .transform((s) =>
    s
      .split(",")
      .map((u) => u.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(URL_PATTERN, "each entry must be a redis:// or rediss:// URL"))
      .min(1, "must name at least one redis:// or rediss:// URL"),
  );

/** `redis://user:pass@host:port` → its parts; the database number, if any, is ignored for nodes. */
export function parseRedisNode(url: string): RedisNode {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 6379,
    tls: u.protocol === "rediss:",
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number(u.pathname.slice(1) || 0),
  };
}

/** Problems with a settings object that the schema alone cannot see; empty when it is usable. */
export function checkRedisSettings(s: RedisSettings, prefix: string): string[] {
  const problems: string[] = [];
  if (s.mode === "standalone" && s.urls.length > 1)
    problems.push(
      "CAPFLOW_REDIS_URL: standalone mode takes one URL; set CAPFLOW_REDIS_MODE=cluster or sentinel for a list",
    );
  if (s.mode === "sentinel" && !s.sentinelName)
    problems.push("CAPFLOW_REDIS_SENTINEL_NAME: sentinel mode needs the primary's name (e.g. mymaster)");
  // BullMQ's scripts touch many keys of one queue at once; on a cluster they must share a slot, which
  // only a hash tag in the prefix guarantees (BullMQ "Redis Cluster" guide). Without it the first
  // job fails with CROSSSLOT: refuse at start instead.
  if (s.mode === "cluster" && !hasHashTag(prefix))
    problems.push(
      `CAPFLOW_QUEUE_PREFIX: "${prefix}" has no hash tag; on a Redis Cluster use e.g. {${prefix}} so each queue's keys share one slot`,
    );
  return problems;
}

/** True when the key prefix carries a non-empty `{tag}`, Redis Cluster's hash-tag rule. */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf("{");
  if (open < 0) return false;
  const close = prefix.indexOf("}", open + 1);
  return close > open + 1;
}

/** The settings with every secret removed, for logs. */
export function describeRedis(s: RedisSettings): string {
  const hosts = s.urls.map((u) => {
    const n = parseRedisNode(u);
    return `${n.tls ? "rediss" : "redis"}://${n.host}:${n.port}`;
  });
  const auth = s.password || s.urls.some((u) => parseRedisNode(u).password) ? " with auth" : "";
  const name = s.mode === "sentinel" ? ` (primary "${s.sentinelName}")` : "";
  return `${s.mode} ${hosts.join(",")}${name}${auth}`;
}
