export type Split = "train" | "val" | "test";

/** One image and all its captions, as a reader yields it. */
export interface DatasetRecord {
  /** Path relative to the images dir (see `locateDataset`), always with forward slashes. */
  image: string;
  captions: string[];
  split?: Split;
  /** 1-based line of the record's first caption in its source file (absent for COCO JSON). */
  line?: number;
  /** Where a reader given `from: start` yields this record first (absent for COCO JSON). */
  start?: SourcePosition;
}

/**
 * A place in a caption file where a reader can start: the byte offset of a line's first byte and
 * that line's 1-based number (so that issues still name the file's real lines).
 */
export interface SourcePosition {
  byte: number;
  line: number;
}

export interface ReadIssue {
  file: string;
  line?: number;
  kind: "malformed" | "missing-image" | "skipped";
  message: string;
}

export interface ReadOptions {
  /** `fail`: the first malformed row or missing image throws a DatasetReadError naming file and line.
   *  `skip`: it is reported through `onIssue` and the reader goes on. Known quirks of real files
   *  (kind `skipped`, e.g. Flickr8k's `.jpg.1` lines) never throw. */
  onError: "skip" | "fail";
  onIssue: (issue: ReadIssue) => void;
  /** Check that each image file exists (default true). Records whose image is missing are reported
   *  (kind `missing-image`) and not yielded. */
  checkImages?: boolean;
  /** Start at a record's `start`, as this reader reported it for the same file, instead of at the
   *  file's beginning: the bytes before it are never read (a distributed ingest worker starts at its
   *  range's first record: store-range.ts). Line-oriented formats only; COCO refuses it. */
  from?: SourcePosition;
}

export class DatasetReadError extends Error {
  constructor(readonly issue: ReadIssue) {
    super(`${issue.file}${issue.line === undefined ? "" : `:${issue.line}`}: ${issue.message}`);
    this.name = "DatasetReadError";
  }
}

/** Where a dataset's caption files and images are, once a reader has looked. */
export interface DatasetLocation {
  files: string[];
  imagesDir: string;
}
