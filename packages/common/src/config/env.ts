import path from "node:path";
import { z } from "zod";
import { envBoolean, envInt } from "./parse-env.ts";
import { redactUrl } from "./redact.ts";
import { REDIS_MODES, RedisUrlList, type RedisSettings } from "../queue/redis-config.ts";

/**
 * The variables every capflow process reads. Roles extend this schema with their own
 * (`packages/<role>/src/env.ts`). Documented one by one in `.env.example`.
 */
export const CommonEnv = z.object({
  CAPFLOW_HOME: z.string().default(".capflow"),
  CAPFLOW_REDIS_URL: z
    .string()
    .regex(
      /^rediss?:\/\/[^,\s]+(\s*,\s*rediss?:\/\/[^,\s]+)*$/,
      "must be a redis:// or rediss:// URL (a comma-separated list in cluster and sentinel mode)",
    )
    .optional()
    .describe("Unset: capflow starts a private redis-server itself"),
  CAPFLOW_REDIS_MODE: z.enum(REDIS_MODES).default("standalone"),
  CAPFLOW_REDIS_USERNAME: z.string().optional(),
  CAPFLOW_REDIS_PASSWORD: z.string().optional(),
  CAPFLOW_REDIS_TLS_CA_FILE: z.string().optional(),
  CAPFLOW_REDIS_SENTINEL_NAME: z.string().optional(),
  CAPFLOW_REDIS_SENTINEL_USERNAME: z.string().optional(),
  CAPFLOW_REDIS_SENTINEL_PASSWORD: z.string().optional(),
  // `{capflow}` is the hash-tag form a Redis Cluster needs (BullMQ's cluster guide).
  CAPFLOW_QUEUE_PREFIX: z
    .string()
    .regex(/^([\w-]+|\{[\w-]+\})$/, "letters, digits, _ and -, or the same inside {} (a cluster hash tag)")
    .default("capflow"),
  CAPFLOW_STORE: z.enum(["local", "s3"]).default("local"),
  CAPFLOW_STORE_DIR: z.string().optional(),
  CAPFLOW_S3_BUCKET: z.string().optional(),
  CAPFLOW_S3_ENDPOINT: z.url().optional(),
  CAPFLOW_S3_REGION: z.string().default("us-east-1"),
  CAPFLOW_S3_FORCE_PATH_STYLE: envBoolean.default(false),
  CAPFLOW_S3_ACCESS_KEY_ID: z.string().optional(),
  CAPFLOW_S3_SECRET_ACCESS_KEY: z.string().optional(),
  CAPFLOW_S3_PREFIX: z.string().default(""),
  CAPFLOW_TF_BACKEND: z.enum(["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"]).default("auto"),
  CAPFLOW_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  CAPFLOW_OPS_PORT: envInt(0, 65535).default(0).describe("0 picks a free port"),
  CAPFLOW_OPS_HOST: z.string().default("127.0.0.1"),
  CAPFLOW_SHUTDOWN_TIMEOUT_MS: envInt(0).default(30_000),
});
export type CommonEnv = z.infer<typeof CommonEnv>;

export function storeDir(env: CommonEnv): string {
  return path.resolve(env.CAPFLOW_STORE_DIR ?? path.join(env.CAPFLOW_HOME, "store"));
}

const SECRET = /SECRET|PASSWORD|TOKEN|KEY$/i;

/** The config as it may be logged: secrets removed, every URL through redactUrl. */
export function redactEnv(env: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => {
      if (v === undefined) return [k, v];
      if (SECRET.test(k) && !k.endsWith("_ID")) return [k, "[redacted]"];
      if (typeof v === "string" && (k.endsWith("_URL") || /^[a-z][a-z0-9+.-]*:\/\//i.test(v)))
        return [k, redactUrl(v)];
      return [k, v];
    }),
  );
}

/** The Redis connection settings of a process; `url` replaces the configured URL (the embedded Redis). */
export function redisSettings(env: CommonEnv, url = env.CAPFLOW_REDIS_URL): RedisSettings {
  return {
    mode: env.CAPFLOW_REDIS_MODE,
    urls: url ? RedisUrlList.parse(url) : [],
    username: env.CAPFLOW_REDIS_USERNAME,
    password: env.CAPFLOW_REDIS_PASSWORD,
    tlsCaFile: env.CAPFLOW_REDIS_TLS_CA_FILE,
    sentinelName: env.CAPFLOW_REDIS_SENTINEL_NAME,
    sentinelUsername: env.CAPFLOW_REDIS_SENTINEL_USERNAME,
    sentinelPassword: env.CAPFLOW_REDIS_SENTINEL_PASSWORD,
  };
}
