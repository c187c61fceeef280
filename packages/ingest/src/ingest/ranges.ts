import { createHash, type Hash } from "node:crypto";

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

/**
 * The sha256 of a range's image names, one per line: the command computes it while it enumerates,
 * the worker while it reads the same records; unequal means the dataset changed in between.
 */
export class RangeDigest {
  private readonly hash: Hash = createHash("sha256");
  add(image: string): void {
    this.hash.update(`${image}\n`);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}
