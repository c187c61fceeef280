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
import type { DatasetLocation, DatasetRecord, ReadIssue, ReadOptions, SourcePosition } from "./types.ts";

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
  // Started at `from`, the parser counts lines and bytes from there: `base` makes them the file's.
  const from = opts.from ?? { byte: 0, line: 1 };
  const base = { byte: from.byte, line: from.line - 1 };
  // csv-parse names its own line in its messages ("... at line 3 ..."): that one is made the file's too.
  const issue = (what: string, err: CsvError | undefined): ReadIssue => {
    const lines = (err as { lines?: unknown } | undefined)?.lines;
    const why = (err?.message ?? "unknown error").replace(
      /\bat line (\d+)\b/,
      (_, n: string) => `at line ${base.line + Number(n)}`,
    );
    return {
      file,
      kind: "malformed",
      message: `${what}: ${why}`,
      ...(typeof lines === "number" ? { line: base.line + lines } : {}),
    };
  };
  pipeline(createReadStream(file, { start: from.byte }), parser, () => {
    /* errors surface through the parser's iterator */
  });
  // A row can start where the parser's previous record ended (its `info.bytes`, the delimiter
  // included; `info.lines` is then that line's number less one): the parser's state is fresh there,
  // quotes included, so parsing from that byte reads what follows exactly as a whole-file read does.
  let start: SourcePosition = from;
  let first = from.byte === 0;
  try {
    for await (const item of parser as AsyncIterable<{
      record: string[];
      info: { lines: number; bytes: number };
    }>) {
      for (const { err } of skipped.splice(0)) report(opts, issue("unreadable CSV record", err));
      const { record, info } = item;
      const line = base.line + info.lines;
      const rowStart = start;
      start = { byte: base.byte + info.bytes, line: line + 1 };
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
      const row: CaptionRow = { image, caption, line, start: rowStart };
      const split = splits?.get(image);
      if (split) row.split = split;
      yield row;
    }
  } catch (e) {
    report(opts, issue("unreadable CSV", e as CsvError));
    // report() returned: onError is 'skip' but the parser cannot continue past this error.
    return;
  }
  for (const { err } of skipped.splice(0)) report(opts, issue("unreadable CSV record", err));
}
