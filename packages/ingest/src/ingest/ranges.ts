import { createHash, type Hash } from "node:crypto";
import type { DatasetRecord } from "../datasets/index.ts";

/** How a dataset's records become ingest jobs: pure functions, tested without I/O. */

export interface RecordRange {
  range: number;
  /** First record (0-based, in the reader's order) and one past the last. */
  start: number;
  end: number;
}

/** Consecutive ranges of `size` records covering `[0, total)`; the last may be shorter. */
export function planRanges(total: number, size: number): RecordRange[] {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`range size must be a positive integer, got ${size}`);
  const ranges: RecordRange[] = [];
  for (let start = 0, range = 0; start < total; start += size, range++)
    ranges.push({ range, start, end: Math.min(start + size, total) });
  return ranges;
}

/** A record as one JSON line: what the run id and the range digests hash. */
export function recordLine(record: Pick<DatasetRecord, "image" | "captions" | "split">): string {
  return `${JSON.stringify([record.image, record.captions, record.split ?? null])}\n`;
}

/**
 * The sha256 of a range's records (image, captions, split), one JSON line each: the command computes
 * it while it enumerates, the worker while it reads the same records; unequal means the dataset
 * changed in between, a caption as much as an image name (the worker's part, not the plan, carries
 * the captions into the manifest).
 */
export class RangeDigest {
  private readonly hash: Hash = createHash("sha256");
  add(record: Pick<DatasetRecord, "image" | "captions" | "split">): void {
    this.addLine(recordLine(record));
  }
  /** Adds a record already written by {@link recordLine} (the command hashes it into the run id too). */
  addLine(line: string): void {
    this.hash.update(line);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}
