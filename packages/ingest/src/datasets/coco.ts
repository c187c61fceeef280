import { readFile } from "node:fs/promises";
import path from "node:path";
import { isSafeName } from "@capflow/common";
import { checkImages, normalizeCaption, report } from "./caption-records.ts";
import { firstExisting, isDir, listDir, safeImagePath } from "./dataset-files.ts";
import type { DatasetLocation, DatasetRecord, ReadOptions, Split } from "./types.ts";

/**
 * COCO captions: `captions_<subset>.json` (in `annotations/` or the folder itself) with `images`
 * and `annotations`; ids are not in order, images have 5–7 captions, captions carry stray
 * whitespace. Images are looked up in `<dir>/<subset>/` (e.g. `train2017/`), else `<dir>/images/`,
 * else `<dir>/`; record paths are relative to `<dir>`. Split comes from the subset name.
 *
 * A COCO file is one JSON document (about 90 MB for train2017), so it is parsed whole; only the
 * records are streamed out. JSON has no useful line numbers: issues name the JSON path instead.
 */
export async function locateCoco(dir: string): Promise<DatasetLocation> {
  for (const d of [path.join(dir, "annotations"), dir]) {
    const files = (await listDir(d)).filter((n) => /^captions_.*\.json$/.test(n)).map((n) => path.join(d, n));
    if (files.length > 0) return { files, imagesDir: dir };
  }
  throw new Error(`coco: no captions_*.json in ${dir} or ${path.join(dir, "annotations")}`);
}

export async function* readCoco(dir: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  // Records come out of a whole parsed document, sorted by id: no byte offset in the file starts a
  // record, so a distributed ingest worker reads from the beginning and skips to its range.
  if (opts.from) throw new Error("coco: a COCO file is one JSON document; it cannot be read from an offset");
  const { files, imagesDir } = await locateCoco(dir);
  for (const file of files) {
    yield* checkImages(readOne(dir, file, opts), imagesDir, file, opts);
  }
}

function splitOf(subset: string): Split | undefined {
  if (/train/i.test(subset)) return "train";
  if (/val/i.test(subset)) return "val";
  if (/test/i.test(subset)) return "test";
  return undefined;
}

async function* readOne(dir: string, file: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  const subset = path
    .basename(file)
    .replace(/^captions_/, "")
    .replace(/\.json$/, "");
  // The subset names a folder next to the file: `captions_...json` gave the subset `..`, and the
  // manifest recorded `../secret.jpg` from outside the dataset. Only a plain name may name a folder.
  if (!isSafeName(subset)) {
    report(opts, {
      file,
      kind: "malformed",
      message: `the subset name ${JSON.stringify(subset)} (from the file name) is not a plain folder name`,
    });
    return;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    report(opts, { file, kind: "malformed", message: `not valid JSON: ${(e as Error).message}` });
    return;
  }
  const { images, annotations } = (doc ?? {}) as { images?: unknown; annotations?: unknown };
  if (!Array.isArray(images) || !Array.isArray(annotations)) {
    report(opts, {
      file,
      kind: "malformed",
      message: 'expected top-level "images" and "annotations" arrays',
    });
    return;
  }
  const prefix =
    (await firstExisting([path.join(dir, subset), path.join(dir, "images")], isDir).then((d) =>
      d === undefined ? "" : path.relative(dir, d).split(path.sep).join("/") + "/",
    )) ?? "";
  const split = splitOf(subset);

  const byId = new Map<number, { image: string; captions: string[] }>();
  images.forEach((img: unknown, i) => {
    const { id, file_name } = (img ?? {}) as { id?: unknown; file_name?: unknown };
    const name = typeof file_name === "string" ? safeImagePath(file_name) : undefined;
    if (typeof id !== "number" || !name) {
      report(opts, {
        file,
        kind: "malformed",
        message: `images[${i}]: needs a numeric "id" and a safe "file_name"`,
      });
      return;
    }
    if (byId.has(id)) {
      report(opts, { file, kind: "malformed", message: `images[${i}]: duplicate id ${id}` });
      return;
    }
    byId.set(id, { image: prefix + name, captions: [] });
  });
  annotations.forEach((ann: unknown, i) => {
    const { image_id, caption } = (ann ?? {}) as { image_id?: unknown; caption?: unknown };
    const entry = typeof image_id === "number" ? byId.get(image_id) : undefined;
    const text = typeof caption === "string" ? normalizeCaption(caption) : "";
    if (!entry || !text) {
      const why = !entry ? `unknown image_id ${String(image_id)}` : "empty or missing caption";
      report(opts, { file, kind: "malformed", message: `annotations[${i}]: ${why}` });
      return;
    }
    entry.captions.push(text);
  });
  // Ids come out of order in the real files; sorting makes the output independent of that.
  for (const id of [...byId.keys()].sort((a, b) => a - b)) {
    const entry = byId.get(id)!;
    if (entry.captions.length === 0) {
      opts.onIssue({ file, kind: "skipped", message: `image id ${id} (${entry.image}) has no captions` });
      continue;
    }
    const record: DatasetRecord = { image: entry.image, captions: entry.captions };
    if (split) record.split = split;
    yield record;
  }
}
