import type { QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import { test as base } from "vitest";
import {
  createQueue,
  createQueueEvents,
  createRedis,
  type QueueName,
  type TypedQueue,
} from "@capflow/common";
import { freshPrefix, redisUrl } from "./services.ts";

/**
 * One test's queues on the suite's real Redis: a fresh prefix, a producer (fail-fast) and a worker
 * (blocking) connection, each queue and its events created on first use. Afterwards every queue is
 * obliterated and closed, events closed and both connections dropped, so no test hand-rolls that.
 */
export interface Queues {
  prefix: string;
  producer: Redis;
  workerConnection: Redis;
  /** The connection and prefix a `createWorker` or role factory takes. */
  workerContext: { connection: Redis; prefix: string };
  queue<Q extends QueueName>(name: Q): TypedQueue<Q>;
  /** The queue's events, ready to listen. */
  events(name: QueueName): Promise<QueueEvents>;
  /** A worker (or anything closable) the test made: closed first, before its queue is obliterated. */
  track<T extends { close(): Promise<unknown> }>(closable: T): T;
}

export const queueTest = base.extend<{ queues: Queues }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from the pattern
  queues: async ({}, use) => {
    const prefix = freshPrefix();
    const producer = createRedis(redisUrl(), "producer");
    const workerConnection = createRedis(redisUrl(), "worker");
    const queues = new Map<
      QueueName,
      { obliterate(o: { force: boolean }): Promise<void>; close(): Promise<void> }
    >();
    const events = new Map<QueueName, QueueEvents>();
    const tracked: Array<{ close(): Promise<unknown> }> = [];
    await use({
      prefix,
      producer,
      workerConnection,
      workerContext: { connection: workerConnection, prefix },
      queue<Q extends QueueName>(name: Q) {
        if (!queues.has(name)) queues.set(name, createQueue(name, { connection: producer, prefix }));
        return queues.get(name) as unknown as TypedQueue<Q>;
      },
      async events(name) {
        let e = events.get(name);
        if (!e) events.set(name, (e = createQueueEvents(name, { connection: workerConnection, prefix })));
        await e.waitUntilReady();
        return e;
      },
      track(closable) {
        tracked.push(closable);
        return closable;
      },
    });
    await Promise.all(tracked.map((c) => c.close()));
    await Promise.all([...events.values()].map((e) => e.close()));
    for (const q of queues.values()) {
      await q.obliterate({ force: true });
      await q.close();
    }
    producer.disconnect();
    workerConnection.disconnect();
  },
});
