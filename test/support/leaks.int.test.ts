import { describe, expect, it } from "vitest";
import { createQueueEvents, createRedis, createWorker, openRedisConnections } from "@capflow/common";
import { closeLeaks, leakMessage } from "./leaks.ts";
import { freshPrefix, redisUrl } from "./services.ts";

// The leak guard (test/leak-guard.ts) runs closeLeaks after every integration and chaos test file
// and fails the file when it returns anything; these tests leak on purpose to show it can fail.
describe("the leak guard", () => {
  it("names a Redis connection, a QueueEvents and a worker left open, and closes them", async () => {
    const prefix = freshPrefix();
    const connection = createRedis(redisUrl(), "worker");
    expect(await connection.ping()).toBe("PONG");
    const events = createQueueEvents("captions", { connection, prefix });
    await events.waitUntilReady();
    const worker = createWorker("features", async () => undefined, { connection, prefix });
    await worker.waitUntilReady();

    const leaked = await closeLeaks();

    expect(leaked).toEqual([
      "BullMQ worker features",
      "BullMQ QueueEvents captions",
      expect.stringMatching(
        /^Redis worker connection to redis:\/\/127\.0\.0\.1:\d+, opened at .*leaks\.int\.test\.ts:\d+/,
      ),
    ]);
    expect(leakMessage(leaked)).toMatch(/^test file left 3 open: BullMQ worker features; /);
    // closeLeaks disconnected it: it ends, and leaves the set.
    if (connection.status !== "end") await new Promise((ended) => connection.once("end", ended));
    expect([...openRedisConnections.keys()]).not.toContain(connection);
    expect(await closeLeaks()).toEqual([]);
  });

  it("passes what the test closed itself, though its socket may not have ended yet", async () => {
    const prefix = freshPrefix();
    const connection = createRedis(redisUrl(), "worker");
    const events = createQueueEvents("captions", { connection, prefix });
    await events.waitUntilReady();
    await events.close();
    connection.disconnect();
    expect(connection.status).toBe("ready"); // "end" comes a tick later
    expect(openRedisConnections.size).toBeGreaterThan(0);
    expect(await closeLeaks()).toEqual([]);
  });

  it("passes a connection closed while it waited to reconnect (ioredis never ends it)", async () => {
    const refused = createRedis("redis://127.0.0.1:1", "producer");
    refused.on("error", () => {});
    await new Promise((retrying) => refused.once("reconnecting", retrying));
    refused.disconnect();
    expect(refused.status).not.toBe("end");
    expect(await closeLeaks()).toEqual([]);
  });
});
