import path from "node:path";
import { ESLint, Linter } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";
import { createQueueEvents, createRedis, createWorker, openRedisConnections } from "@capflow/common";
import { closeLeaks, leakMessage } from "./leaks.ts";
import { freshPrefix, redisUrl } from "./services.ts";
import { ROOT } from "./capflow-cli.ts";

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

// The guard sees only what the factories made, so eslint keeps the raw constructors inside common's
// queue/ (eslint.config.js). These tests lint snippets under the rules eslint gives a test file and
// a file of common queue/.
describe("the lint rule that sends every connection, QueueEvents and worker through the factories", () => {
  const RULES = ["no-restricted-syntax", "@typescript-eslint/no-restricted-imports"];
  async function rulesFor(file: string): Promise<Linter.RulesRecord> {
    const config = await new ESLint({ cwd: ROOT }).calculateConfigForFile(path.join(ROOT, file));
    return Object.fromEntries(RULES.filter((r) => r in config.rules).map((r) => [r, config.rules[r]]));
  }
  const lint = (code: string, rules: Linter.RulesRecord): string[] =>
    new Linter({ configType: "flat" })
      .verify(
        code,
        [
          {
            files: ["**/*.ts"],
            languageOptions: { parser: tseslint.parser as Linter.Parser },
            plugins: { "@typescript-eslint": tseslint.plugin as never },
            rules,
          },
        ],
        "snippet.ts",
      )
      .map((m) => m.ruleId ?? m.message);

  it("refuses a raw BullMQ worker (named, aliased or through the namespace), Redis, QueueEvents and duplicate()", async () => {
    const rules = await rulesFor("test/support/leaks.int.test.ts");
    const imports = "@typescript-eslint/no-restricted-imports";
    expect(lint('import { Worker } from "bullmq";\nnew Worker("features", null);', rules)).toEqual([imports]);
    expect(lint('import { Worker as W } from "bullmq";\nnew W("features", null);', rules)).toEqual([imports]);
    expect(lint('import * as bullmq from "bullmq";\nnew bullmq.Worker("features", null);', rules)).toEqual([
      imports,
    ]);
    expect(lint("new Redis(url);\nnew QueueEvents(name);\nconnection.duplicate();", rules)).toEqual(
      Array(3).fill("no-restricted-syntax"),
    );
  });

  it("lets a test name BullMQ's Worker type and start a worker thread; common's queue/ builds them raw", async () => {
    const rules = await rulesFor("test/support/leaks.int.test.ts");
    const typeAndThread = [
      'import type { Worker } from "bullmq";',
      'import { Worker as Thread } from "node:worker_threads";',
      "export const start = (w: Worker) => new Thread(w.name);",
    ].join("\n");
    expect(lint(typeAndThread, rules)).toEqual([]);
    const factories = await rulesFor("packages/common/src/queue/queues.ts");
    expect(lint('import { Worker } from "bullmq";\nnew Worker("features", null);', factories)).toEqual([]);
  });
});
