import path from "node:path";
import type { CommonEnv } from "../../config/env.ts";
import { LocalStore } from "../../store/local-store.ts";
import type { ObjectStore } from "../../store/object-store.ts";
import { S3Store } from "../../store/s3-store.ts";

/**
 * Where `capflow export --to` writes: `s3://bucket/prefix` (reached with the CAPFLOW_S3_* endpoint,
 * region and credentials of the environment) or a local folder (created if missing).
 */
export function exportTarget(to: string, env: CommonEnv, cwd = process.cwd()): ObjectStore {
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to);
  if (s3) {
    return new S3Store({
      bucket: s3[1]!,
      prefix: s3[2]!.replace(/\/+$/, ""),
      endpoint: env.CAPFLOW_S3_ENDPOINT,
      region: env.CAPFLOW_S3_REGION,
      forcePathStyle: env.CAPFLOW_S3_FORCE_PATH_STYLE,
      accessKeyId: env.CAPFLOW_S3_ACCESS_KEY_ID,
      secretAccessKey: env.CAPFLOW_S3_SECRET_ACCESS_KEY,
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(to))
    throw new Error(`--to: ${to} is neither a folder nor s3://bucket/prefix`);
  return new LocalStore(path.resolve(cwd, to));
}
