import { describe, expect } from "vitest";
import type { Worker } from "bullmq";
import {
  cleanJobs,
  createWorker,
  registry,
  getConcurrency,
  instrumentWorker,
  listFailed,
  pauseQueue,
  queueStats,
  registerQueueDepthMetrics,
  resumeQueue,
  retryFailed,
  setConcurrency,
  watchConcurrency,
} from "@capflow/common";
import { startAdminServer } from "@capflow/api";
import { queueTest, type Queues } from "../support/queue-fixture.ts";

/** Queue administration against a real Redis: the functions, the HTTP routes, the worker side. */

/** A captions worker that fails while `fail()` says so; closed by the fixture after the test. */
function failingWorker(queues: Queues, fail: () => boolean): Worker {
  return queues.track(
    createWorker(
      "captions",
      async () => {
        if (fail()) throw new Error("store unreachable\n    at stack line");
        return "ok";
      },
      { ...queues.workerContext, concurrency: 2 },
    ),
  );
}

const job = (i: number) => ({ kind: "image" as const, requestId: `r${i}`, imageKey: `images/${i}.png` });

describe("queue admin", () => {
  queueTest(
    "lists failed jobs with their reason, retries only those, and cleans old ones",
    async ({ queues }) => {
      const { prefix, producer: redis } = queues;
      const queue = queues.queue("captions");
      let failing = true;
      const worker = failingWorker(queues, () => failing);
      const failedOnce = new Promise<void>((resolve) => {
        let n = 0;
        worker.on("failed", () => ++n === 2 && resolve());
      });
      await queue.add("c", job(1), { attempts: 1 });
      await queue.add("c", job(2), { attempts: 1 });
      await failedOnce;

      const failed = await listFailed(queue);
      expect(failed.map((f) => f.reason)).toEqual(["store unreachable", "store unreachable"]);
      expect(JSON.stringify(failed)).not.toContain("images/");

      failing = false;
      const done = new Promise<void>((resolve) => {
        let n = 0;
        worker.on("completed", () => ++n === 2 && resolve());
      });
      await expect(retryFailed(queue)).resolves.toEqual({ retried: 2 });
      await done;
      const stats = await queueStats(queue, redis, prefix);
      expect(stats.counts).toMatchObject({ failed: 0, completed: 2 });
      expect(stats.workers).toBe(1);

      await expect(cleanJobs(queue, { state: "completed", olderThanMs: 0 })).resolves.toEqual({ removed: 2 });
    },
  );

  queueTest("pauses and resumes the queue everywhere", async ({ queues }) => {
    const { prefix, producer: redis } = queues;
    const queue = queues.queue("captions");
    await pauseQueue(queue);
    expect((await queueStats(queue, redis, prefix)).paused).toBe(true);
    await resumeQueue(queue);
    expect((await queueStats(queue, redis, prefix)).paused).toBe(false);
  });

  queueTest(
    "changes a running worker's concurrency through the Redis key, and back to its default",
    async ({ queues }) => {
      const { prefix, producer: redis } = queues;
      const worker = failingWorker(queues, () => false);
      const changes: Array<[number, number]> = [];
      const watch = watchConcurrency(worker, redis, prefix, "captions", {
        intervalMs: 60_000,
        onChange: (from, to) => changes.push([from, to]),
      });
      queues.track({ close: async () => watch.stop() });
      await setConcurrency(redis, prefix, "captions", 7);
      await watch.poll();
      expect(worker.concurrency).toBe(7);
      await expect(getConcurrency(redis, prefix, "captions")).resolves.toBe(7);
      await setConcurrency(redis, prefix, "captions", null);
      await watch.poll();
      expect(worker.concurrency).toBe(2);
      expect(changes).toEqual([
        [2, 7],
        [7, 2],
      ]);
      await expect(setConcurrency(redis, prefix, "captions", 0)).rejects.toThrow(/1 to 1024/);
    },
  );

  queueTest("exports queue depth and job outcomes with every label initialised", async ({ queues }) => {
    const queue = queues.queue("captions");
    const worker = failingWorker(queues, () => false);
    instrumentWorker(worker, "captions");
    registerQueueDepthMetrics([queue]);
    await queue.add("c", job(1), { delay: 60_000 });
    const text = await registry.metrics();
    expect(text).toContain('capflow_queue_jobs{queue="captions",state="delayed"} 1');
    expect(text).toMatch(/capflow_job_failures_total\{queue="captions",reason="malformed"\} 0/);
    expect(text).toMatch(/capflow_jobs_total\{queue="captions",status="failed"\} 0/);
  });

  queueTest(
    "serves the admin API: read-only without a key, full with the key, 401 with a wrong one",
    async ({ queues }) => {
      const { prefix, producer: redis } = queues;
      const queue = queues.queue("captions");
      const open = await startAdminServer({ queues: [queue], redis, prefix });
      queues.track(open.app);
      expect((await fetch(`${open.url}/admin/api/queues/captions`)).status).toBe(200);
      expect((await fetch(`${open.url}/admin/api/queues/captions/pause`, { method: "POST" })).status).toBe(
        403,
      );
      expect((await fetch(`${open.url}/admin/api/queues/nope`)).status).toBe(404);

      const key = "k".repeat(24);
      const guarded = await startAdminServer({ queues: [queue], redis, prefix, adminKey: key });
      queues.track(guarded.app);
      expect((await fetch(`${guarded.url}/admin/api/queues`)).status).toBe(401);
      expect(
        (await fetch(`${guarded.url}/admin/queues`, { headers: { cookie: "capflow_admin_key=wrong" } }))
          .status,
      ).toBe(401);
      const auth = { "x-capflow-admin-key": key, "content-type": "application/json" };
      expect(
        (await fetch(`${guarded.url}/admin/api/queues/captions/pause`, { method: "POST", headers: auth }))
          .status,
      ).toBe(200);
      expect(await queue.isPaused()).toBe(true);
      const put = await fetch(`${guarded.url}/admin/api/queues/captions/concurrency`, {
        method: "PUT",
        headers: auth,
        body: JSON.stringify({ concurrency: 3 }),
      });
      expect(await put.json()).toEqual({ queue: "captions", concurrency: 3 });
      await expect(getConcurrency(redis, prefix, "captions")).resolves.toBe(3);
      const bad = await fetch(`${guarded.url}/admin/api/queues/captions/clean`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ state: "active" }),
      });
      expect(bad.status).toBe(400);
      expect(
        (await fetch(`${guarded.url}/admin/queues`, { headers: { cookie: `capflow_admin_key=${key}` } }))
          .status,
      ).toBe(200);
    },
  );
});
