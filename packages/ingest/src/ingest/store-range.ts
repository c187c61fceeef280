import { z } from "zod";
import { getJson, keys, putJson, UnrecoverableError, type JobData, type ObjectStore } from "@capflow/common";
import { checkImages } from "../datasets/caption-records.ts";
import { locateDataset, readDataset, type DatasetRecord, type ReadIssue } from "../datasets/index.ts";
import { storeImage } from "./ingest-dataset.ts";
import { RangeDigest } from "./ranges.ts";

/**
 * `ingest/<runId>/part-<range>.json`: one range's records with their stored images, in the reader's
 * order, duplicates included (which copy of a content counts is decided when the parts are assembled,
 * in dataset order), and the range's records whose image is missing. Bounded by the range size: a
 * record is about a manifest row (886 B measured with 5 captions), so 10,000 records make ~9 MB.
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
  issues: z.array(
    z.object({
      file: z.string(),
      line: z.number().int().optional(),
      kind: z.enum(["malformed", "missing-image", "skipped"]),
      message: z.string(),
    }),
  ),
});
export type RangePart = z.infer<typeof RangePart>;

export async function readRangePart(store: ObjectStore, runId: string, range: number): Promise<RangePart> {
  return RangePart.parse(await getJson(store, keys.ingestPart(runId, range)));
}

/** `count` records of the reader after skipping `skip`, and the digest of those records once read. */
async function* slice(
  records: AsyncIterable<DatasetRecord>,
  skip: number,
  count: number,
  digest: RangeDigest,
): AsyncGenerator<DatasetRecord> {
  let index = 0;
  for await (const record of records) {
    if (index++ < skip) continue;
    digest.add(record);
    yield record;
    if (index >= skip + count) return;
  }
}

/**
 * An ingest worker's job: reads records `[start, end)` of the dataset, stores their images by content,
 * and writes the range's part (one object, written last: its presence means the range is done). A
 * redone range stores nothing new (HEAD first) and rewrites the same part.
 *
 * Records are counted as the reader yields them without looking at images (the command enumerated
 * them so), and only this range's images are looked for. A line-oriented caption file is read from
 * the range's first record (`job.from`, taken by the command at a record's start, so a Flickr8k
 * image's five lines are never split) and no further than its last: every range costs its own lines,
 * where reading from the file's beginning made the last of N/R ranges parse all N records (O(N²/R)
 * for the dataset; docs/benchmarks.md has the figures). COCO has no `from` (one JSON document,
 * parsed whole): its ranges read from the beginning and skip `start` records.
 */
export async function storeRange(
  store: ObjectStore,
  job: JobData<"ingest">,
  opts: { concurrency: number; signal?: AbortSignal; onProgress?: (records: number) => void },
): Promise<{ records: number; alreadyDone: boolean }> {
  const partKey = keys.ingestPart(job.runId, job.range);
  if (await store.head(partKey)) return { records: job.end - job.start, alreadyDone: true };
  const { imagesDir, files } = await locateDataset(job.format, job.dir);
  const issues: ReadIssue[] = [];
  // Malformed lines were counted (and, with --on-error fail, refused) when the command enumerated
  // the dataset; a missing image is found here and goes into the part for the command to report.
  const read = { onError: "skip" as const, onIssue: (issue: ReadIssue) => void issues.push(issue) };
  const digest = new RangeDigest();
  let seen = 0;
  const counted = (async function* () {
    for await (const record of slice(
      readDataset(job.format, job.dir, {
        onError: "skip",
        onIssue: () => {},
        checkImages: false,
        ...(job.from ? { from: job.from } : {}),
      }),
      job.from ? 0 : job.start,
      job.end - job.start,
      digest,
    )) {
      seen++;
      yield record;
    }
  })();
  const records: RangePart["records"] = [];
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
    opts.onProgress?.(seen);
  };
  for await (const record of checkImages(counted, imagesDir, files[0] ?? job.dir, read)) {
    batch.push(record);
    if (batch.length >= opts.concurrency) await drain();
  }
  await drain();
  if (seen !== job.end - job.start || digest.hex() !== job.digest)
    throw new UnrecoverableError(
      `range ${job.range} of ${job.dataset}: the dataset's records changed since it was enumerated ` +
        `(read ${seen} of ${job.end - job.start}); run capflow ingest again`,
    );
  const part: RangePart = { runId: job.runId, range: job.range, start: job.start, records, issues };
  await putJson(store, partKey, part);
  return { records: seen, alreadyDone: false };
}
