import { z } from "zod";
import { getJson, keys, putJson, UnrecoverableError, type JobData, type ObjectStore } from "@capflow/common";
import { locateDataset, readDataset, type DatasetRecord } from "../datasets/index.ts";
import { storeImage } from "./ingest-dataset.ts";
import { RangeDigest } from "./ranges.ts";

/**
 * `ingest/<runId>/part-<range>.json`: one range's records with their stored images, in the reader's
 * order, duplicates included (which copy of a content counts is decided when the parts are assembled,
 * in dataset order). Bounded by the range size: a record is about a manifest row (886 B measured
 * with 5 captions), so 10,000 records make ~9 MB.
 */
export const RangePart = z.object({
  runId: z.string(),
  range: z.number().int(),
  start: z.number().int(),
  records: z.array(
    z.object({
      image: z.string(),
      captions: z.array(z.string()),
      split: z.enum(["train", "val", "test"]).optional(),
      id: z.string().regex(/^[0-9a-f]{64}$/),
      key: z.string(),
    }),
  ),
});
export type RangePart = z.infer<typeof RangePart>;

export async function readRangePart(store: ObjectStore, runId: string, range: number): Promise<RangePart> {
  return RangePart.parse(await getJson(store, keys.ingestPart(runId, range)));
}

/**
 * An ingest worker's job: reads records `[start, end)` of the dataset, stores their images by content,
 * and writes the range's part (one object, written last: its presence means the range is done). A
 * redone range stores nothing new (HEAD first) and rewrites the same part.
 */
export async function storeRange(
  store: ObjectStore,
  job: JobData<"ingest">,
  opts: { concurrency: number; signal?: AbortSignal; onProgress?: (records: number) => void },
): Promise<{ records: number; alreadyDone: boolean }> {
  const partKey = keys.ingestPart(job.runId, job.range);
  if (await store.head(partKey)) return { records: job.end - job.start, alreadyDone: true };
  const { imagesDir } = await locateDataset(job.format, job.dir);
  // Issues were counted (and, with --on-error fail, refused) when the command enumerated the dataset;
  // here the reader only has to yield the same records in the same order.
  const reader = readDataset(job.format, job.dir, { onError: "skip", onIssue: () => {} });
  const records: RangePart["records"] = [];
  const digest = new RangeDigest();
  let batch: DatasetRecord[] = [];
  const drain = async () => {
    opts.signal?.throwIfAborted();
    const stored = await Promise.all(
      batch.map(async (r) => ({
        image: r.image,
        captions: r.captions,
        ...(r.split ? { split: r.split } : {}),
        ...(await storeImage(store, imagesDir, r.image)),
      })),
    );
    records.push(...stored);
    batch = [];
    opts.onProgress?.(records.length);
  };
  let index = 0;
  for await (const record of reader) {
    if (index++ < job.start) continue;
    digest.add(record.image);
    batch.push(record);
    if (batch.length >= opts.concurrency) await drain();
    if (index >= job.end) break;
  }
  await drain();
  if (records.length !== job.end - job.start || digest.hex() !== job.digest)
    throw new UnrecoverableError(
      `range ${job.range} of ${job.dataset}: the dataset's records changed since it was enumerated ` +
        `(read ${records.length} of ${job.end - job.start}); run capflow ingest again`,
    );
  const part: RangePart = { runId: job.runId, range: job.range, start: job.start, records };
  await putJson(store, partKey, part);
  return { records: records.length, alreadyDone: false };
}
