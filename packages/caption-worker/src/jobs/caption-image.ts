import { UnrecoverableError } from "bullmq";
import { NotFoundError, type CaptionResult, type JobData, type ObjectStore } from "@capflow/common";
import { preprocessImage } from "@capflow/ml";
import type { Captioner } from "../captioner.ts";

/** The `captions` job for one image: decode, encode, caption, answer in the job's return value. */
export async function captionImage(
  captioner: Captioner,
  store: ObjectStore,
  data: Extract<JobData<"captions">, { kind: "image" }>,
  enqueuedAt: number,
  maxPixels: number,
): Promise<CaptionResult> {
  const started = performance.now();
  const queuedMs = Math.max(0, Date.now() - enqueuedAt);
  const lease = await captioner.holder(data.model).acquire();
  try {
    let bytes: Buffer;
    try {
      bytes = await store.get(data.imageKey);
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new UnrecoverableError(`image ${data.imageKey} is not in the store`);
      throw err;
    }
    const pre = await preprocessImage(bytes, { limitInputPixels: maxPixels });
    // A bad image can never succeed: no retries, the reason goes back to the caller.
    if (!pre.ok) throw new UnrecoverableError(`${pre.reason}: ${pre.message}`);
    const encodeStart = performance.now();
    const feature = await captioner.encodeBatcher.submit(pre.pixels);
    const decodeStart = performance.now();
    const [out] = await captioner.decode(lease.loaded, feature, 1, data.decode);
    const done = performance.now();
    return {
      caption: out!.caption,
      logProb: out!.logProb,
      confidence: out!.confidence,
      similarity: out!.similarity,
      outOfDomain: out!.outOfDomain,
      modelVersion: lease.loaded.version,
      method: data.decode.method,
      ...(out!.alternatives ? { alternatives: out!.alternatives } : {}),
      timings: {
        queuedMs,
        encodeMs: Math.round(decodeStart - encodeStart),
        decodeMs: Math.round(done - decodeStart),
        totalMs: Math.round(queuedMs + done - started),
      },
    };
  } finally {
    lease.release();
  }
}
