import path from "node:path";
import { z } from "zod";
import { envBoolean, envInt } from "./parse-env.ts";
import { redactUrl } from "./redact.ts";

/**
 * The variables every capflow process reads. Roles extend this schema with their own
 * (`packages/<role>/src/env.ts`). Documented one by one in `.env.example`.
 */
export const CommonEnv = z.object({
  CAPFLOW_HOME: z.string().default(".capflow"),
  CAPFLOW_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .optional()
    .describe("Unset: capflow starts a private redis-server itself"),
  CAPFLOW_QUEUE_PREFIX: z
    .string()
    .regex(/^[\w-]+$/)
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
