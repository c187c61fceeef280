import type { TestProject } from "vitest/node";
import { startEmbeddedRedis, freePort } from "@capflow/common";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore
import S3rver from "s3rver";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    redisPort: number;
    s3Endpoint: string;
    s3Bucket: string;
  }
}

/**
 * One real redis-server and one real S3-protocol server (s3rver) per test run, on free loopback
 * ports. Tests isolate themselves with fresh queue prefixes and store prefixes.
 */
export default async function setup(project: TestProject) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-test-"));
  const redis = await startEmbeddedRedis({ dataDir: path.join(root, "redis"), persistence: false });
  const s3Port = await freePort();
  const bucket = "capflow-test";
  const s3 = new S3rver({
    port: s3Port,
    address: "127.0.0.1",
    silent: true,
    directory: path.join(root, "s3"),
    configureBuckets: [{ name: bucket }],
  });
  await s3.run();
  project.provide("redisUrl", redis.url);
  project.provide("redisPort", redis.port);
  project.provide("s3Endpoint", `http://127.0.0.1:${s3Port}`);
  project.provide("s3Bucket", bucket);
  return async () => {
    await s3.close();
    await redis.stop();
    await fs.rm(root, { recursive: true, force: true });
  };
}
