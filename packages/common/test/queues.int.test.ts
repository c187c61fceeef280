import { afterEach, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import {
  assertNoEviction,
  createRedis,
  createWorker,
  RedisPolicyError,
  startEmbeddedRedis,
  redisServerAvailable,
  REDIS_INSTALL_HINT,
} from "@capflow/common";
import { queueTest } from "../../../test/support/queue-fixture.ts";
import { redisUrl, tempDir } from "../../../test/support/services.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("redis policy", () => {
  it("accepts the test Redis (noeviction)", async () => {
    const redis = createRedis(redisUrl(), "producer");
    cleanups.push(async () => redis.disconnect());
    await expect(assertNoEviction(redis)).resolves.toBeUndefined();
  });

  it("refuses an allkeys-lru Redis with a message saying how to fix it", async () => {
    const server = await startEmbeddedRedis({ dataDir: await tempDir("redis"), persistence: false });
    cleanups.push(() => server.stop());
    const admin = createRedis(server.url, "worker");
    cleanups.push(async () => admin.disconnect());
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    const err = await assertNoEviction(admin).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisPolicyError);
    expect((err as Error).message).toMatch(/allkeys-lru/);
    expect((err as Error).message).toMatch(/CONFIG SET maxmemory-policy noeviction/);
  });

  it("names the install command when redis-server is missing", async () => {
    expect(redisServerAvailable("/nonexistent/redis-server")).toBe(false);
    await expect(
      startEmbeddedRedis({ dataDir: await tempDir("redis"), binary: "/nonexistent/redis-server" }),
    ).rejects.toThrow(REDIS_INSTALL_HINT);
  });
});

describe("job catalog", () => {
  queueTest("fails a malformed payload as unrecoverable, without retries", async ({ queues }) => {
    const events = await queues.events("features");
    let calls = 0;
    queues.track(
      createWorker(
        "features",
        async () => {
          calls++;
        },
        queues.workerContext,
      ),
    );
    // Bypass the compile-time types on purpose: this is what a buggy or hostile producer sends.
    const raw = queues.track(new Queue("features", { connection: queues.producer, prefix: queues.prefix }));
    const job = await raw.add("bad", { dataset: "../escape", shardId: 42 }, { attempts: 5 });
    const failed = new Promise<string>((resolve) =>
      events.on("failed", ({ jobId, failedReason }) => jobId === job.id && resolve(failedReason)),
    );
    const reason = await failed;
    expect(reason).toMatch(/malformed features job/);
    expect(reason).toMatch(/dataset/);
    expect(reason).toMatch(/shardId/);
    const stored = await queues.queue("features").getJob(job.id!);
    expect(stored?.attemptsMade).toBe(1);
    expect(calls).toBe(0);
  });

  queueTest("delivers a well-formed payload, parsed, to the processor", async ({ queues }) => {
    const seen: unknown[] = [];
    const done = new Promise<void>((resolve) => {
      queues.track(
        createWorker(
          "features",
          async (data) => {
            seen.push(data);
            resolve();
          },
          queues.workerContext,
        ),
      );
    });
    await queues
      .queue("features")
      .add("ok", { dataset: "emoji", shardId: "s-1", shardKey: "datasets/emoji/shards/s-1.json" });
    await done;
    expect(seen).toEqual([{ dataset: "emoji", shardId: "s-1", shardKey: "datasets/emoji/shards/s-1.json" }]);
  });
});
