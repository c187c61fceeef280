import { storeDir, type CommonEnv } from "../config/env.ts";
import { ConfigError } from "../config/parse-env.ts";
import { LocalStore } from "./local-store.ts";
import type { ObjectStore } from "./object-store.ts";
import { S3Store } from "./s3-store.ts";

export * from "./object-store.ts";
export { LocalStore } from "./local-store.ts";
export { S3Store, type S3StoreOptions } from "./s3-store.ts";
export { DEFAULT_S3_RETRY, S3RetryStrategy, type S3RetryPolicy } from "./s3-retry.ts";
export * as keys from "./keys.ts";
export { readModelPointer, type ModelPointer } from "./model-pointer.ts";

export function createStore(env: CommonEnv): ObjectStore {
  switch (env.CAPFLOW_STORE) {
    case "local":
      return new LocalStore(storeDir(env));
    case "s3":
      if (!env.CAPFLOW_S3_BUCKET) throw new ConfigError("CAPFLOW_S3_BUCKET: required when CAPFLOW_STORE=s3");
      return new S3Store({
        bucket: env.CAPFLOW_S3_BUCKET,
        endpoint: env.CAPFLOW_S3_ENDPOINT,
        region: env.CAPFLOW_S3_REGION,
        forcePathStyle: env.CAPFLOW_S3_FORCE_PATH_STYLE,
        accessKeyId: env.CAPFLOW_S3_ACCESS_KEY_ID,
        secretAccessKey: env.CAPFLOW_S3_SECRET_ACCESS_KEY,
        prefix: env.CAPFLOW_S3_PREFIX,
      });
  }
}
