import type { Job, QueueEvents } from "bullmq";
import {
  imageExtension,
  keys,
  sha256,
  type CaptionResult,
  type DecodeMethod,
  type JobInput,
  type ObjectStore,
  type TypedQueue,
} from "@capflow/common";
import { ApiProblem } from "./problem.ts";

/**
 * Single-image captions: the image is stored by content like ingest does, and the job id is derived
 * from (image, model, decoding), so identical concurrent requests share one job and one answer.
 */
export interface DecodeChoice {
  model: string;
  method: DecodeMethod;
  beamWidth: number;
}

export type CaptionAnswer =
  | ({ id: string; status: "done" } & CaptionResult)
  | { id: string; status: "queued" | "running"; poll: string }
  | { id: string; status: "failed"; error: "caption_failed"; message: string };

const IMAGE_JOB_ID = /^img\.[0-9a-f]{40}$/;

export function imageJobId(sha: string, d: DecodeChoice): string {
  // Only beam search uses the beam width: leave it out otherwise so both spellings share the job.
  const decode = d.method === "beam" ? `beam/${d.beamWidth}` : d.method;
  return `img.${sha256(`${sha}\n${d.model}\n${decode}`).slice(0, 40)}`;
}

/**
 * Stores uploaded bytes under uploads/<hour>/<sha256>.<ext>, where the retention sweep expires them
 * (retention.ts); refuses what is not a JPEG/PNG/GIF/WebP. Uploads used to go to images/ beside
 * dataset images and were kept forever, refused decompression bombs included.
 */
export async function storeImage(
  store: ObjectStore,
  bytes: Uint8Array,
  now = new Date(),
): Promise<{ sha: string; key: string }> {
  if (bytes.length === 0) throw new ApiProblem(400, "bad_request", "the image is empty");
  const ext = imageExtension(bytes);
  if (ext === "bin") throw new ApiProblem(415, "unsupported_image", "not a JPEG, PNG, GIF or WebP image");
  const sha = sha256(bytes);
  const key = keys.upload(now, sha, ext);
  if (!(await store.head(key))) await store.putIfAbsent(key, bytes);
  return { sha, key };
}

/** An image given by key must already be in the store. */
export async function existingImage(store: ObjectStore, key: string): Promise<{ sha: string; key: string }> {
  if (!(await store.head(key))) throw new ApiProblem(404, "not_found", `no image stored under ${key}`);
  return { sha: /([0-9a-f]{64})\.\w+$/.exec(key)![1]!, key };
}

/**
 * Enqueues the caption job for an image, or joins the one already there. A failed one is replaced
 * (the client asked again); a completed one answers at once.
 */
export async function enqueueImageCaption(
  queue: TypedQueue<"captions">,
  image: { sha: string; key: string },
  d: DecodeChoice,
): Promise<Job> {
  const jobId = imageJobId(image.sha, d);
  const existing = await queue.getJob(jobId);
  if (existing) {
    if (!(await existing.isFailed())) return existing;
    await existing.remove();
  }
  const data: JobInput<"captions"> = {
    kind: "image",
    requestId: jobId,
    imageKey: image.key,
    model: d.model,
    decode: { method: d.method, beamWidth: d.beamWidth },
  };
  return queue.add("image", data, { jobId });
}

/** Waits up to `waitMs` for the job, then answers with its result or where to poll. */
export async function awaitCaption(
  queue: TypedQueue<"captions">,
  job: Job,
  events: QueueEvents,
  waitMs: number,
): Promise<CaptionAnswer> {
  if (waitMs > 0) {
    try {
      await job.waitUntilFinished(events, waitMs);
    } catch {
      // Failed, or not finished in time: the job's state below tells which.
    }
  }
  // The job object from add() or a duplicate add() does not carry the result: read it back.
  const fresh = await queue.getJob(job.id!);
  return fresh ? captionAnswer(fresh) : { id: job.id!, status: "queued", poll: `/v1/captions/${job.id!}` };
}

async function captionAnswer(job: Job): Promise<CaptionAnswer> {
  const id = job.id!;
  switch (await job.getState()) {
    case "completed":
      return { id, status: "done", ...(job.returnvalue as CaptionResult) };
    case "failed":
      return {
        id,
        status: "failed",
        error: "caption_failed",
        message: job.failedReason || "the caption job failed",
      };
    case "active":
      return { id, status: "running", poll: `/v1/captions/${id}` };
    case "waiting":
    case "prioritized":
    case "delayed": // a retry after a failed attempt
    case "waiting-children":
    case "unknown": // removed between the two reads
      return { id, status: "queued", poll: `/v1/captions/${id}` };
  }
}

/** GET /v1/captions/:id */
export async function captionById(queue: TypedQueue<"captions">, id: string): Promise<CaptionAnswer> {
  const job = IMAGE_JOB_ID.test(id) ? await queue.getJob(id) : undefined;
  if (!job)
    throw new ApiProblem(404, "not_found", `no caption request ${id} (results are kept for 24 hours)`);
  return captionAnswer(job);
}
