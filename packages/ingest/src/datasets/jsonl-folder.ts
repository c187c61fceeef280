import path from "node:path";
import { z } from "zod";
import { checkImages, normalizeCaption, report } from "./caption-records.ts";
import { isFile, readLines, safeImagePath } from "./dataset-files.ts";
import type { DatasetLocation, DatasetRecord, ReadOptions, Split } from "./types.ts";

/**
 * A plain folder of images plus `captions.jsonl`, one JSON object a line:
 * `{"image": "cats/1.jpg", "captions": ["...", "..."], "split"?: "train"|"val"|"test"}` or
 * `{"image": ..., "caption": "..."}`. Consecutive lines for the same image are merged.
 * Image paths are relative to the folder and may not leave it.
 */
const Line = z
  .object({
    image: z.string().min(1),
    caption: z.string().optional(),
    captions: z.array(z.string()).optional(),
    split: z.enum(["train", "val", "test", "dev", "validation"]).optional(),
  })
  .refine((l) => l.caption !== undefined || l.captions !== undefined, {
    message: 'needs "caption" or "captions"',
  });

export async function locateJsonlFolder(dir: string): Promise<DatasetLocation> {
  const file = path.join(dir, "captions.jsonl");
  if (!(await isFile(file))) throw new Error(`jsonl-folder: ${file} not found`);
  return { files: [file], imagesDir: dir };
}

export async function* readJsonlFolder(dir: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  const { files, imagesDir } = await locateJsonlFolder(dir);
  const file = files[0]!;
  yield* checkImages(records(file, opts), imagesDir, file, opts);
}

async function* records(file: string, opts: ReadOptions): AsyncGenerator<DatasetRecord> {
  let current: DatasetRecord | undefined;
  for await (const { text, line, byte } of readLines(file, opts.from)) {
    if (text.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      report(opts, { file, line, kind: "malformed", message: `not valid JSON: ${(e as Error).message}` });
      continue;
    }
    const parsed = Line.safeParse(json);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join(".") || "line"}: ${i.message}`).join("; ");
      report(opts, { file, line, kind: "malformed", message: why });
      continue;
    }
    const l = parsed.data;
    const image = safeImagePath(l.image);
    const captions = [...(l.captions ?? []), ...(l.caption === undefined ? [] : [l.caption])]
      .map(normalizeCaption)
      .filter((c) => c !== "");
    if (!image || captions.length === 0) {
      report(opts, {
        file,
        line,
        kind: "malformed",
        message: !image ? `bad image path "${l.image}"` : "no non-empty caption",
      });
      continue;
    }
    const split: Split | undefined = l.split === "dev" || l.split === "validation" ? "val" : l.split;
    if (current && current.image === image && current.split === split) {
      current.captions.push(...captions);
      continue;
    }
    if (current) yield current;
    current = { image, captions, line, start: { byte, line } };
    if (split) current.split = split;
  }
  if (current) yield current;
}
