import { createQueue, createQueueEvents, type JobInput, type Runtime } from "@capflow/common";
import type { RunProgress, RunResult } from "@capflow/trainer";

/** One line per epoch, for terminals and logs alike. */
export function formatProgress(p: RunProgress): string {
  return (
    `epoch ${p.epoch}/${p.epochs}: train loss ${p.trainLoss?.toFixed(3)}, val loss ${p.valLoss?.toFixed(3)}, ` +
    `val CIDEr-D ${p.cider?.toFixed(3)}, ETA ${Math.round(p.etaSeconds ?? 0)} s`
  );
}

/**
 * Submits a run to the training queue (job id from the run id, so resubmitting resumes rather than
 * duplicates, also after the run failed) and follows it until a trainer finishes it.
 */
export async function submitRun(
  rt: Pick<Runtime, "redis" | "prefix" | "shutdown">,
  spec: JobInput<"training">,
  onProgress: (p: RunProgress) => void,
  onSubmitted?: (jobId: string) => void,
): Promise<RunResult> {
  const queue = createQueue("training", { connection: rt.redis, prefix: rt.prefix });
  const events = createQueueEvents("training", { connection: rt.redis, prefix: rt.prefix });
  rt.shutdown.add("training queue", async () => {
    await events.close();
    await queue.close();
  });
  await events.waitUntilReady();
  const jobId = `train.${spec.runId}`;
  // A failed run keeps its job under this id (removeOnFail keeps 1000), and adding a job whose id exists
  // is a no-op: resubmitting would only report the old failure, forever. Its checkpoints are intact,
  // so replace the job and the trainer resumes from the newest one. A trainer killed twice during one
  // run is such a failure: BullMQ fails a job stalled more than maxStalledCount (1) times.
  // `job.retry()` is not enough there: the stalled verdict stays on the job (`defa`) and fails it again
  // before it runs (bullmq 6.7.0, reprocessJob does not clear it).
  const previous = await queue.getJob(jobId);
  if (previous && (await previous.isFailed())) await previous.remove();
  const job = await queue.add("run", spec, { jobId });
  onSubmitted?.(job.id!);
  events.on("progress", ({ jobId, data }) => {
    if (jobId === job.id) onProgress(data as RunProgress);
  });
  return (await job.waitUntilFinished(events)) as RunResult;
}
