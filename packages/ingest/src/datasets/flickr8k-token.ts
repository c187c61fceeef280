import path from "node:path";
import {
  checkImages,
  groupConsecutive,
  normalizeCaption,
  report,
  type CaptionRow,
} from "./caption-records.ts";
import { firstExisting, isDir, isFile, readLines, safeImagePath } from "./dataset-files.ts";
import { loadSplitLists } from "./split-lists.ts";
import type { DatasetLocation, DatasetRecord, ReadOptions, Split } from "./types.ts";

const IMAGE_EXT = /\.(jpe?g|png|gif|webp|bmp|tiff?)$/i;

/**
 * The original Flickr8k release: `Flickr8k.token.txt` (`<image>#<n>\t<caption>`), the split lists
 * `Flickr_8k.{train,dev,test}Images.txt` (usually in `Flickr8k_text/`) and the images in
 * `Flicker8k_Dataset/` (sic: the real archive misspells it).
 */
export async function locateFlickr8kToken(dir: string): Promise<DatasetLocation> {
  const textDirs = [dir, path.join(dir, "Flickr8k_text")];
  const file = await firstExisting(
    textDirs.map((d) => path.join(d, "Flickr8k.token.txt")),
    isFile,
  );
  if (!file) throw new Error(`flickr8k-token: Flickr8k.token.txt not found in ${dir} or ${textDirs[1]}`);
  const imagesDir =
    (await firstExisting(
      ["Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images"].map((d) => path.join(dir, d)),
      isDir,
    )) ?? path.join(dir, "Flicker8k_Dataset");
  return { files: [file], imagesDir };
}

export async function* readFlickr8kToken(dir: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  const { files, imagesDir } = await locateFlickr8kToken(dir);
  const file = files[0]!;
  const splits = await loadSplitLists([path.dirname(file), dir, path.join(dir, "Flickr8k_text")]);
  yield* checkImages(groupConsecutive(rows(file, splits, opts)), imagesDir, file, opts);
}

async function* rows(
  file: string,
  splits: Map<string, Split> | undefined,
  opts: ReadOptions,
): AsyncGenerator<CaptionRow> {
  // The real file has 5 lines for "2258277193_586949ec62.jpg.1", an image that does not exist:
  // one warning per such image, not one per line.
  let lastSkipped: string | undefined;
  for await (const { text, line, byte } of readLines(file, opts.from)) {
    if (text.trim() === "") continue;
    const tab = text.indexOf("\t");
    const key = tab < 0 ? "" : text.slice(0, tab);
    const hash = key.lastIndexOf("#");
    const n = hash < 0 ? "" : key.slice(hash + 1);
    if (tab < 0 || hash < 0 || !/^\d+$/.test(n)) {
      report(opts, { file, line, kind: "malformed", message: 'expected "<image>#<n>\\t<caption>"' });
      continue;
    }
    const rawImage = key.slice(0, hash);
    const image = safeImagePath(rawImage);
    if (!image) {
      report(opts, { file, line, kind: "malformed", message: `bad image path "${rawImage}"` });
      continue;
    }
    if (!IMAGE_EXT.test(image)) {
      if (image !== lastSkipped) {
        lastSkipped = image;
        opts.onIssue({
          file,
          line,
          kind: "skipped",
          message: `skipping captions of "${image}": not an image file name (a known Flickr8k.token.txt quirk)`,
        });
      }
      continue;
    }
    const caption = normalizeCaption(text.slice(tab + 1));
    if (!caption) {
      report(opts, { file, line, kind: "malformed", message: "empty caption" });
      continue;
    }
    const row: CaptionRow = { image, caption, line, start: { byte, line } };
    const split = splits?.get(image);
    if (split) row.split = split;
    yield row;
  }
}
