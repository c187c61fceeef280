// From caption rows to dataset records: issues reported (or thrown under onError: 'fail'), captions
// normalised, consecutive rows of one image grouped, records without an image file dropped.
import { containedFile } from "./dataset-files.ts";
import {
  DatasetReadError,
  type DatasetRecord,
  type ReadIssue,
  type ReadOptions,
  type SourcePosition,
  type Split,
} from "./types.ts";

/** Reports an issue; under `onError: 'fail'` a malformed row or missing image also throws. */
export function report(opts: ReadOptions, issue: ReadIssue): void {
  opts.onIssue(issue);
  if (opts.onError === "fail" && issue.kind !== "skipped") throw new DatasetReadError(issue);
}

/** Trims and collapses runs of whitespace (COCO captions carry trailing spaces and newlines). */
export function normalizeCaption(raw: string): string {
  return raw.replace(/\s+/gu, " ").trim();
}

export interface CaptionRow {
  image: string;
  caption: string;
  line: number;
  /** Where a reader can start to read this row first (see `ReadOptions.from`). */
  start: SourcePosition;
  split?: Split;
}

/**
 * Groups rows into records. Caption files list an image's captions on consecutive lines, so only
 * the current group is held in memory; an image that comes back later yields a second record.
 */
export async function* groupConsecutive(rows: AsyncIterable<CaptionRow>): AsyncGenerator<DatasetRecord> {
  let current: DatasetRecord | undefined;
  for await (const row of rows) {
    if (current && current.image === row.image) {
      current.captions.push(row.caption);
      continue;
    }
    if (current) yield current;
    current = { image: row.image, captions: [row.caption], line: row.line, start: row.start };
    if (row.split) current.split = row.split;
  }
  if (current) yield current;
}

/**
 * Drops (and reports) records whose image file is missing. Up to `window` stats run ahead of the
 * consumer so that checking does not serialise the stream on disk latency; order is kept.
 */
export async function* checkImages(
  records: AsyncIterable<DatasetRecord>,
  imagesDir: string,
  file: string,
  opts: ReadOptions,
  window = 32,
): AsyncGenerator<DatasetRecord> {
  if (opts.checkImages === false) {
    yield* records;
    return;
  }
  const pending: Array<{ record: DatasetRecord; exists: Promise<boolean> }> = [];
  const settle = (record: DatasetRecord, exists: boolean): DatasetRecord | undefined => {
    if (exists) return record;
    const issue: ReadIssue = {
      file,
      kind: "missing-image",
      message: `image ${record.image} not found in ${imagesDir} (or it leads outside it)`,
    };
    if (record.line !== undefined) issue.line = record.line;
    report(opts, issue);
    return undefined;
  };
  for await (const record of records) {
    pending.push({
      record,
      exists: containedFile(imagesDir, record.image).then((real) => real !== undefined),
    });
    if (pending.length >= window) {
      const head = pending.shift()!;
      const ok = settle(head.record, await head.exists);
      if (ok) yield ok;
    }
  }
  for (const head of pending) {
    const ok = settle(head.record, await head.exists);
    if (ok) yield ok;
  }
}
