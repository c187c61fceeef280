import { createHash } from "node:crypto";
import type { DatasetFormat } from "@capflow/common";
import { readDataset, type ReadIssue, type ReadOptions, type SourcePosition } from "../datasets/index.ts";
import { planRanges, RangeDigest, recordLine, type RecordRange } from "./ranges.ts";

export interface EnumerateOptions {
  dataset: string;
  format: DatasetFormat;
  /** Records per range (default 10,000). */
  rangeSize?: number;
  onError: ReadOptions["onError"];
  onIssue?: (issue: ReadIssue) => void;
}

export interface RangePlan {
  runId: string;
  /** Each range with the digest of its records and, for a line-oriented format, where its first
   *  record starts in the caption file (a worker reads from there: store-range.ts). */
  ranges: Array<RecordRange & { digest: string; from?: SourcePosition }>;
  issues: Record<ReadIssue["kind"], number>;
}

/**
 * Reads the caption files once for the ranges: a digest of each range's records, where each
 * range's first record starts, the caption files' issues, and the run id: a hash of the dataset's
 * name, format, folder, every record and the ranges' starts, so the same data always makes the same
 * run and jobs, and changed data (or the same records at other offsets) a new one. No image is looked
 * at (the workers look for their ranges' images): no file-system call per image here.
 */
export async function enumerateRanges(dir: string, opts: EnumerateOptions): Promise<RangePlan> {
  const rangeSize = opts.rangeSize ?? 10_000;
  const issues: Record<ReadIssue["kind"], number> = { malformed: 0, "missing-image": 0, skipped: 0 };
  const run = createHash("sha256").update(JSON.stringify([opts.dataset, opts.format, dir, rangeSize]));
  const digests: string[] = [];
  const starts: Array<SourcePosition | undefined> = [];
  let digest = new RangeDigest();
  let count = 0;
  for await (const record of readDataset(opts.format, dir, {
    onError: opts.onError,
    onIssue: (issue) => {
      issues[issue.kind]++;
      opts.onIssue?.(issue);
    },
    checkImages: false,
  })) {
    const line = recordLine(record);
    run.update(line);
    if (count % rangeSize === 0) starts.push(record.start);
    digest.addLine(line);
    if (++count % rangeSize === 0) {
      digests.push(digest.hex());
      digest = new RangeDigest();
    }
  }
  if (count % rangeSize !== 0) digests.push(digest.hex());
  run.update(JSON.stringify(starts));
  const ranges = planRanges(count, rangeSize).map((r) => {
    const from = starts[r.range];
    return { ...r, digest: digests[r.range]!, ...(from ? { from } : {}) };
  });
  return { runId: `i${run.digest("hex").slice(0, 24)}`, ranges, issues };
}
