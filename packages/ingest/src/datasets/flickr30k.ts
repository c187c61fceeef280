import path from "node:path";
import {
  checkImages,
  groupConsecutive,
  normalizeCaption,
  report,
  type CaptionRow,
} from "./caption-records.ts";
import { firstExisting, isDir, isFile, readLines, safeImagePath } from "./dataset-files.ts";
import type { DatasetLocation, DatasetRecord, ReadOptions } from "./types.ts";

/**
 * Flickr30k's `results.csv` (Kaggle): `image_name| comment_number| comment`, a space after each
 * `|`. Not real CSV: comments contain bare `"`, so it is split on the first two `|` by hand. One
 * real row (`2199200615.jpg| 4   A dog runs across the grass .`) lost its second `|`: it is
 * reported with its line number and the reader goes on. Kaggle nests the images as
 * `flickr30k_images/flickr30k_images/`; both the outer and the inner folder are accepted.
 */
export async function locateFlickr30k(dir: string): Promise<DatasetLocation> {
  const file = await firstExisting(
    [path.join(dir, "results.csv"), path.join(dir, "flickr30k_images", "results.csv")],
    isFile,
  );
  if (!file) throw new Error(`flickr30k: results.csv not found in ${dir}`);
  const base = path.dirname(file);
  const imagesDir =
    (await firstExisting(
      [path.join(base, "flickr30k_images"), path.join(base, "Images"), path.join(base, "images")],
      isDir,
    )) ?? base;
  return { files: [file], imagesDir };
}

export async function* readFlickr30k(dir: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  const { files, imagesDir } = await locateFlickr30k(dir);
  const file = files[0]!;
  yield* checkImages(groupConsecutive(rows(file, opts)), imagesDir, file, opts);
}

async function* rows(file: string, opts: ReadOptions): AsyncGenerator<CaptionRow> {
  for await (const { text, line, byte } of readLines(file, opts.from)) {
    if (text.trim() === "") continue;
    const a = text.indexOf("|");
    const b = a < 0 ? -1 : text.indexOf("|", a + 1);
    if (line === 1 && text.slice(0, a < 0 ? undefined : a).trim() === "image_name") continue;
    if (a < 0 || b < 0) {
      report(opts, {
        file,
        line,
        kind: "malformed",
        message: `expected "image_name| comment_number| comment", found ${a < 0 ? "no" : "one"} "|"`,
      });
      continue;
    }
    const rawImage = text.slice(0, a).trim();
    const number = text.slice(a + 1, b).trim();
    const image = safeImagePath(rawImage);
    const caption = normalizeCaption(text.slice(b + 1));
    if (!image || !/^\d+$/.test(number) || !caption) {
      const why = !image
        ? `bad image path "${rawImage}"`
        : !/^\d+$/.test(number)
          ? `bad comment_number "${number}"`
          : "empty comment";
      report(opts, { file, line, kind: "malformed", message: why });
      continue;
    }
    yield { image, caption, line, start: { byte, line } };
  }
}
