import { createReadStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream";
import { parse, type CsvError } from "csv-parse";
import {
  checkImages,
  groupConsecutive,
  normalizeCaption,
  report,
  type CaptionRow,
} from "./caption-records.ts";
import { firstExisting, isDir, isFile, safeImagePath } from "./dataset-files.ts";
import { loadSplitLists } from "./split-lists.ts";
import type { DatasetLocation, DatasetRecord, ReadOptions } from "./types.ts";

/**
 * Flickr8k as Kaggle ships it: `captions.txt` (header `image,caption`, real CSV: about 6% of the
 * captions contain a comma and are quoted, with `""` inside) and `Images/`. A naive split(',')
 * breaks those rows, so a real CSV parser reads it. Split lists (`Flickr_8k.trainImages.txt`, ...)
 * are used when present beside it (the emoji dataset writes them); otherwise split stays undefined.
 */
export async function locateFlickr8kCsv(dir: string): Promise<DatasetLocation> {
  const file = path.join(dir, "captions.txt");
  if (!(await isFile(file))) throw new Error(`flickr8k-csv: ${file} not found`);
  const imagesDir =
    (await firstExisting(
      [path.join(dir, "Images"), path.join(dir, "images"), path.join(dir, "Flicker8k_Dataset")],
      isDir,
    )) ?? path.join(dir, "Images");
  return { files: [file], imagesDir };
}

export async function* readFlickr8kCsv(dir: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  const { files, imagesDir } = await locateFlickr8kCsv(dir);
  const file = files[0]!;
  const splits = await loadSplitLists([dir, path.join(dir, "Flickr8k_text")]);
  yield* checkImages(groupConsecutive(rows(file, splits, opts)), imagesDir, file, opts);
}

async function* rows(
  file: string,
  splits: Map<string, "train" | "val" | "test"> | undefined,
  opts: ReadOptions,
): AsyncGenerator<CaptionRow> {
  const skipped: Array<{ err: CsvError | undefined }> = [];
  const parser = parse({
    bom: true,
    info: true,
    relax_column_count: true,
    skip_empty_lines: true,
    // Under 'skip' a record the parser cannot read (e.g. an unclosed quote) is reported, not fatal.
    skip_records_with_error: opts.onError === "skip",
    on_skip: (err) => {
      skipped.push({ err });
      return undefined;
    },
  });
  pipeline(createReadStream(file), parser, () => {
    /* errors surface through the parser's iterator */
  });
  let first = true;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      for (const { err } of skipped.splice(0)) {
        report(opts, {
          file,
          kind: "malformed",
          message: `unreadable CSV record: ${err?.message ?? "unknown error"}`,
          ...lineOf(err),
        });
      }
      const { record, info } = item;
      const line = info.lines;
      if (first) {
        first = false;
        if (record[0]?.trim() === "image" && record[1]?.trim() === "caption") continue;
      }
      if (record.length !== 2) {
        report(opts, {
          file,
          line,
          kind: "malformed",
          message: `expected 2 columns (image,caption), got ${record.length}; a caption with a comma must be quoted`,
        });
        continue;
      }
      const image = safeImagePath(record[0]!);
      const caption = normalizeCaption(record[1]!);
      if (!image || !caption) {
        report(opts, {
          file,
          line,
          kind: "malformed",
          message: !image ? `bad image path "${record[0]}"` : "empty caption",
        });
        continue;
      }
      const row: CaptionRow = { image, caption, line };
      const split = splits?.get(image);
      if (split) row.split = split;
      yield row;
    }
  } catch (e) {
    const err = e as CsvError;
    const message = `unreadable CSV: ${err.message}`;
    report(opts, { file, kind: "malformed", message, ...lineOf(err) });
    // report() returned: onError is 'skip' but the parser cannot continue past this error.
    return;
  }
  for (const { err } of skipped.splice(0)) {
    report(opts, {
      file,
      kind: "malformed",
      message: `unreadable CSV record: ${err?.message ?? "unknown error"}`,
      ...lineOf(err),
    });
  }
}

function lineOf(err: CsvError | undefined): { line?: number } {
  const lines = (err as { lines?: unknown } | undefined)?.lines;
  return typeof lines === "number" ? { line: lines } : {};
}
