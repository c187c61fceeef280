import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { inject } from "vitest";
import { Redis } from "ioredis";
import {
  CommonEnv,
  LocalStore,
  S3Store,
  createRedis,
  type ObjectStore,
  type S3StoreOptions,
} from "@capflow/common";

export const redisUrl = () => inject("redisUrl");

/** A fresh queue prefix per test: no test sees another's jobs. */
export const freshPrefix = () => `test-${randomUUID()}`;

export function producer(): Redis {
  return createRedis(redisUrl(), "producer");
}

export async function tempDir(label = "store"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `capflow-${label}-`));
}

export async function localStore(): Promise<LocalStore> {
  return new LocalStore(await tempDir());
}

/** Options for the loopback s3rver under a fresh key prefix (plain data: they can go to a child process). */
export function s3StoreOptions(): S3StoreOptions {
  return {
    bucket: inject("s3Bucket"),
    endpoint: inject("s3Endpoint"),
    region: "us-east-1",
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    prefix: `t-${randomUUID()}`,
  };
}

/** The CAPFLOW_* settings that point a child process at the S3 store `opts` describes. */
export function s3Env(opts: S3StoreOptions): Record<string, string> {
  return {
    CAPFLOW_STORE: "s3",
    CAPFLOW_S3_BUCKET: opts.bucket,
    CAPFLOW_S3_ENDPOINT: opts.endpoint!,
    CAPFLOW_S3_REGION: opts.region,
    CAPFLOW_S3_FORCE_PATH_STYLE: String(opts.forcePathStyle),
    CAPFLOW_S3_ACCESS_KEY_ID: opts.accessKeyId!,
    CAPFLOW_S3_SECRET_ACCESS_KEY: opts.secretAccessKey!,
    CAPFLOW_S3_PREFIX: opts.prefix ?? "",
  };
}

/** The S3 store on the loopback s3rver, under a fresh key prefix. */
export function s3Store(): S3Store {
  return new S3Store(s3StoreOptions());
}

/** Environment for a child process or runtime pointed at the test services. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CAPFLOW_REDIS_URL: redisUrl(),
    CAPFLOW_QUEUE_PREFIX: freshPrefix(),
    CAPFLOW_LOG_LEVEL: "warn",
    ...extra,
  };
}

export const parseCommonEnv = (env: Record<string, string>) => CommonEnv.parse(env);
export type { ObjectStore };
