import { createReadStream } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import {
  DatasetReadError,
  type DatasetRecord,
  type ReadIssue,
  type ReadOptions,
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

/**
 * An image path from a caption file, made safe to join to the images dir: relative, forward
 * slashes, no `..` segment. Returns undefined for a path that would escape the folder.
 */
export function safeImagePath(raw: string): string | undefined {
  const p = raw.trim().replace(/\\/g, "/");
  if (p === "" || p.startsWith("/") || /^[a-zA-Z]:/.test(p)) return undefined;
  const norm = path.posix.normalize(p);
  if (norm === ".." || norm.startsWith("../") || norm === ".") return undefined;
  return norm;
}

export async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * The real path of `rel` under `dir` when it is a regular file that stays inside `dir` once every
 * symlink is resolved, else undefined. A symlink in an images folder (`link.jpg -> /etc/hostname`)
 * was followed and its target stored as a dataset image; `dir` itself may be a symlink (a dataset
 * folder pointing at a mounted disk), so the comparison is between real paths.
 */
export async function containedFile(dir: string, rel: string): Promise<string | undefined> {
  try {
    const [root, real] = await Promise.all([realpath(dir), realpath(path.join(dir, rel))]);
    if (!real.startsWith(root + path.sep)) return undefined;
    return (await stat(real)).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** Reads an image of a dataset, refusing one that resolves outside its folder (see containedFile). */
export async function readContainedFile(dir: string, rel: string): Promise<Buffer> {
  const real = await containedFile(dir, rel);
  if (!real) throw new Error(`image ${rel} is not a file inside ${dir}`);
  return readFile(real);
}

export async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function firstExisting(
  candidates: readonly string[],
  test: (p: string) => Promise<boolean>,
): Promise<string | undefined> {
  for (const c of candidates) if (await test(c)) return c;
  return undefined;
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** Lines of a text file, streamed, 1-based, without a leading BOM. */
export async function* readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      yield { text: line === 1 ? text.replace(/^\uFEFF/, "") : text, line };
    }
  } finally {
    rl.close();
  }
}

export interface CaptionRow {
  image: string;
  caption: string;
  line: number;
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
    current = { image: row.image, captions: [row.caption], line: row.line };
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

export const SPLIT_LIST_FILES: Readonly<Record<Split, string>> = {
  train: "Flickr_8k.trainImages.txt",
  val: "Flickr_8k.devImages.txt",
  test: "Flickr_8k.testImages.txt",
};

/**
 * Flickr8k's split lists (`Flickr_8k.{train,dev,test}Images.txt`), looked up in `dirs` in order.
 * Undefined when none exists: ingest then assigns a deterministic hash split.
 */
export async function loadSplitLists(dirs: readonly string[]): Promise<Map<string, Split> | undefined> {
  for (const dir of dirs) {
    const found = await Promise.all(
      (Object.entries(SPLIT_LIST_FILES) as Array<[Split, string]>).map(async ([split, name]) => {
        const p = path.join(dir, name);
        return (await isFile(p)) ? ([split, p] as const) : undefined;
      }),
    );
    const lists = found.filter((x) => x !== undefined);
    if (lists.length === 0) continue;
    const splits = new Map<string, Split>();
    for (const [split, p] of lists) {
      for await (const { text } of readLines(p)) {
        const name = text.trim();
        if (name) splits.set(name, split);
      }
    }
    return splits;
  }
  return undefined;
}
