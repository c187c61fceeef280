import { locateCoco, readCoco } from "./coco.ts";
import { locateFlickr30k, readFlickr30k } from "./flickr30k.ts";
import { locateFlickr8kCsv, readFlickr8kCsv } from "./flickr8k-csv.ts";
import { locateFlickr8kToken, readFlickr8kToken } from "./flickr8k-token.ts";
import { locateJsonlFolder, readJsonlFolder } from "./jsonl-folder.ts";
import { DATASET_FORMATS, type DatasetFormat } from "@capflow/common";
import type { DatasetLocation, DatasetRecord, ReadOptions } from "./types.ts";

export * from "./types.ts";
export { SPLIT_LIST_FILES } from "./split-lists.ts";
export { readLines } from "./dataset-files.ts";
export { readCoco, readFlickr30k, readFlickr8kCsv, readFlickr8kToken, readJsonlFolder };

// The list lives in the job catalog (common): ingest jobs name a format.
export { DATASET_FORMATS, type DatasetFormat } from "@capflow/common";

type Reader = (dir: string, opts: ReadOptions) => AsyncGenerator<DatasetRecord>;
type Locator = (dir: string) => Promise<DatasetLocation>;

const formats: { [F in DatasetFormat]: { read: Reader; locate: Locator } } = {
  "flickr8k-csv": { read: readFlickr8kCsv, locate: locateFlickr8kCsv },
  "flickr8k-token": { read: readFlickr8kToken, locate: locateFlickr8kToken },
  flickr30k: { read: readFlickr30k, locate: locateFlickr30k },
  coco: { read: readCoco, locate: locateCoco },
  "jsonl-folder": { read: readJsonlFolder, locate: locateJsonlFolder },
};

function check(format: string): asserts format is DatasetFormat {
  if (!(DATASET_FORMATS as readonly string[]).includes(format)) {
    throw new Error(`unknown dataset format "${format}"; valid formats: ${DATASET_FORMATS.join(", ")}`);
  }
}

/** Streams a dataset's records: one per image, captions grouped, in file order. */
export function readDataset(
  format: DatasetFormat,
  dir: string,
  opts: ReadOptions,
): AsyncGenerator<DatasetRecord> {
  check(format);
  return formats[format].read(dir, opts);
}

/** The caption file(s) and the folder that `DatasetRecord.image` paths are relative to. */
export function locateDataset(format: DatasetFormat, dir: string): Promise<DatasetLocation> {
  check(format);
  return formats[format].locate(dir);
}

/** Guesses the format from the files present (first match in DATASET_FORMATS order). */
export async function detectFormat(dir: string): Promise<DatasetFormat> {
  for (const format of DATASET_FORMATS) {
    try {
      await formats[format].locate(dir);
      return format;
    } catch {
      // not this one
    }
  }
  throw new Error(
    `cannot tell the dataset format of ${dir}: expected captions.txt (flickr8k-csv), Flickr8k.token.txt ` +
      `(flickr8k-token), results.csv (flickr30k), captions_*.json (coco) or captions.jsonl (jsonl-folder)`,
  );
}
