import { describe, expect } from "vitest";
import pino from "pino";
import { createWorker, Shutdown, type JobInput, type Processor } from "@capflow/common";
import { submitRun } from "@capflow/cli";
import { queueTest } from "../../../test/support/queue-fixture.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("submitRun (capflow train)", () => {
  const spec: JobInput<"training"> = { runId: "r1", dataset: "drawn", encoderId: "enc", epochs: 2 };

  queueTest(
    "runs a run again whose job failed as stalled more than allowed, instead of reporting the old failure",
    async ({ queues }) => {
      const { prefix, producer: redis } = queues;
      const queue = queues.queue("training");
      // Training workers with stand-in processors: the dead one never runs its own (autorun: false),
      // takes a job by hand and never renews its lock.
      const worker = (processor: Processor<"training">, opts = {}) => {
        const w = createWorker("training", processor, { ...queues.workerContext, ...opts });
        queues.track({ close: () => w.close(true) });
        return w;
      };

      // A trainer takes the run and dies (it never renews its lock); a second trainer's stalled check
      // then fails the job, as BullMQ does to a run whose trainer was killed more than maxStalledCount
      // times.
      await queue.add("run", spec, { jobId: "train.r1" });
      const dead = worker(async () => "never runs", { autorun: false, lockDuration: 300 });
      expect((await dead.getNextJob("dead-trainer"))?.id).toBe("train.r1");
      const checker = worker(async () => "never runs", { maxStalledCount: 0, stalledInterval: 200 });
      while ((await queue.getJobState("train.r1")) !== "failed") await sleep(100);
      expect((await queue.getJob("train.r1"))?.failedReason).toBe("job stalled more than allowable limit");
      await checker.close();

      // The operator resubmits the run under its id; a live trainer finishes it.
      worker(async (data) => ({ runId: data.runId, epochs: 2 }));
      const shutdown = new Shutdown(pino({ level: "silent" }), 10_000);
      queues.track({ close: () => shutdown.run() });
      const result = await submitRun({ redis, prefix, shutdown }, spec, () => undefined);
      expect(result).toMatchObject({ runId: "r1", epochs: 2 });
    },
  );
});
