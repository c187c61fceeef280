import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { SPLIT_LIST_FILES } from "../split-lists.ts";
import type { Split } from "../types.ts";
import { emojiCaptions } from "./captions.ts";
import { IMAGE_SIZE, LOW_RES_SIZE, renderPng } from "./render.ts";
import {
  hexKey,
  loadCaptionSources,
  loadStyles,
  STYLE_SPLIT,
  type EmojibaseEntry,
  type Style,
} from "./sources.ts";

/**
 * `capflow dataset emoji`: a real image–caption dataset built from npm packages only, written in
 * Flickr8k's Kaggle form (`captions.txt` + `Images/` + `Flickr_8k.*Images.txt`), so it goes through
 * the same reader and ingest path as real data. Splits hold out an art style: train = Noto, Twemoji,
 * OpenMoji, old Noto; val = EmojiOne; test = Fluent.
 */
export interface BuildEmojiOptions {
  /** `ci`: ~60 emoji present in every style (a few hundred images, seconds). `demo`: 300 such emoji
   *  (~1,800 images; sized so `capflow demo` ends within 10 minutes on 2 idle cores: 541 s measured with
   *  25 epochs, one augmented view per training image and the check sets). `default`: every
   *  emoji (~1,900) in every style that has it. `full`: default plus skin-tone variants. */
  size: "ci" | "demo" | "default" | "full";
  /** Draw every style at 64 px and upscale, so that no style is recognisable by its sharpness. */
  lowRes?: boolean;
  /**
   * A check set instead of the dataset: only the test style (Fluent), drawn at this many pixels and
   * enlarged to 299, every image in the test split. It measures recognition of a small, blurry
   * rendering of an unseen style (`capflow dataset emoji --test-render 64`).
   */
  testRender?: number;
  onProgress?: (done: number, total: number) => void;
  /** Parallel renders; default min(2, cores). Output does not depend on it. */
  concurrency?: number;
}

export interface BuildEmojiResult {
  counts: { train: number; val: number; test: number; emoji: number };
  dir: string;
}

/** Emoji with fewer captions than this are left out (the data has nothing more to say about them). */
export const MIN_CAPTIONS = 2;
export const CI_EMOJI = 60;
export const DEMO_EMOJI = 300;
/** Always in the `ci` subset, so tests can check known captions. */
const CI_PINNED = ["1F436", "2764", "1F47B"]; // dog face, red heart, ghost (no flag is drawn by every style)

interface Planned {
  image: string;
  style: Style;
  key: string;
  captions: string[];
  split: Split;
}

export async function buildEmojiDataset(outDir: string, opts: BuildEmojiOptions): Promise<BuildEmojiResult> {
  const src = loadCaptionSources();
  const styles = loadStyles(src.emoji);

  // Components (skin tones, hair) and bare regional indicators are not pictures of anything.
  let entries = src.emoji.filter((e) => e.group !== undefined && e.group !== 2);
  if (opts.size === "full") entries = entries.flatMap((e) => [e, ...(e.skins ?? [])]);
  entries = [...entries].sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || (a.hexcode < b.hexcode ? -1 : 1));
  let captioned = entries
    .map((e) => ({ e, key: hexKey(e.hexcode), captions: emojiCaptions(e, src) }))
    .filter((x) => x.captions.length >= MIN_CAPTIONS && styles.some((s) => s.has(x.key)));
  if (opts.size === "ci") captioned = ciSubset(captioned, styles, CI_EMOJI);
  if (opts.size === "demo") captioned = ciSubset(captioned, styles, DEMO_EMOJI);

  const plan: Planned[] = [];
  const drawn = opts.testRender !== undefined ? styles.filter((s) => STYLE_SPLIT[s.id] === "test") : styles;
  for (const { e, key, captions } of captioned) {
    for (const style of drawn) {
      if (!style.has(key)) continue;
      plan.push({
        image: `${style.id}-${imageCode(e)}.png`,
        style,
        key,
        captions,
        split: STYLE_SPLIT[style.id],
      });
    }
  }
  plan.sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));

  const imagesDir = path.join(outDir, "Images");
  await mkdir(imagesDir, { recursive: true });
  await removeStaleImages(imagesDir, new Set(plan.map((p) => p.image)));
  await renderAll(plan, imagesDir, opts);

  await writeFile(path.join(outDir, "captions.txt"), captionsCsv(plan));
  for (const split of ["train", "val", "test"] as const) {
    const names = plan.filter((p) => p.split === split).map((p) => p.image);
    await writeFile(path.join(outDir, SPLIT_LIST_FILES[split]), names.length ? names.join("\n") + "\n" : "");
  }
  await writeFile(path.join(outDir, "LICENSES.md"), licenses(drawn));
  const counts = {
    train: plan.filter((p) => p.split === "train").length,
    val: plan.filter((p) => p.split === "val").length,
    test: plan.filter((p) => p.split === "test").length,
    emoji: captioned.length,
  };
  await writeFile(
    path.join(outDir, "emoji-dataset.json"),
    JSON.stringify(
      {
        size: opts.size,
        lowRes: Boolean(opts.lowRes),
        ...(opts.testRender !== undefined ? { testRender: opts.testRender } : {}),
        counts,
        styles: Object.fromEntries(
          drawn.map((s) => [s.id, { split: STYLE_SPLIT[s.id], package: `${s.pkg}@${s.version}` }]),
        ),
      },
      null,
      2,
    ) + "\n",
  );
  return { counts, dir: outDir };
}

function drawSize(opts: BuildEmojiOptions): number {
  if (opts.testRender !== undefined) return opts.testRender;
  return opts.lowRes ? LOW_RES_SIZE : IMAGE_SIZE;
}

/** Lowercase code points as emojibase writes them (`1f436`, `1f1eb-1f1f7`). */
function imageCode(e: EmojibaseEntry): string {
  return e.hexcode.toLowerCase();
}

/** `count` emoji drawn by every style: the pinned ones plus an even spread over the CLDR order. */
function ciSubset<T extends { e: EmojibaseEntry; key: string }>(
  all: T[],
  styles: Style[],
  count: number,
): T[] {
  const everywhere = all.filter((x) => styles.every((s) => s.has(x.key)));
  const chosen = new Set(everywhere.filter((x) => CI_PINNED.includes(x.e.hexcode)));
  const rest = everywhere.filter((x) => !chosen.has(x));
  const need = Math.max(0, count - chosen.size);
  for (let i = 0; i < need && rest.length; i++) chosen.add(rest[Math.floor((i * rest.length) / need)]!);
  return everywhere.filter((x) => chosen.has(x));
}

async function renderAll(plan: Planned[], imagesDir: string, opts: BuildEmojiOptions): Promise<void> {
  const workers = Math.max(1, opts.concurrency ?? Math.min(2, os.availableParallelism()));
  let next = 0;
  let done = 0;
  // Each file depends only on its own SVG, so completion order does not change any output byte.
  const worker = async () => {
    while (next < plan.length) {
      const p = plan[next++]!;
      const png = await renderPng((size) => {
        const svg = p.style.svg(p.key, size);
        if (!svg) throw new Error(`${p.style.id}: no SVG for ${p.key}`);
        return svg;
      }, drawSize(opts));
      await writeFile(path.join(imagesDir, p.image), png);
      opts.onProgress?.(++done, plan.length);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
}

async function removeStaleImages(imagesDir: string, keep: Set<string>): Promise<void> {
  const ours = /^(noto|twemoji|openmoji|noto-v1|emojione|fluent)-[0-9a-f-]+\.png$/;
  for (const name of await readdir(imagesDir)) {
    if (ours.test(name) && !keep.has(name)) await rm(path.join(imagesDir, name));
  }
}

/** RFC 4180 quoting, as Kaggle's captions.txt: only fields with a comma, quote or newline. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function captionsCsv(plan: Planned[]): string {
  const lines = ["image,caption"];
  for (const p of plan) for (const c of p.captions) lines.push(`${csvField(p.image)},${csvField(c)}`);
  return lines.join("\n") + "\n";
}

function licenses(styles: Style[]): string {
  const rows = styles.map(
    (s) =>
      `| ${s.id} | ${STYLE_SPLIT[s.id]} | ${s.title} | \`${s.pkg}@${s.version}\` | ${s.license} | ${s.author} |`,
  );
  return [
    "# Licences and attribution",
    "",
    "The images in `Images/` are rasterisations (299×299 PNG, transparent background) of the emoji",
    "artwork in the npm packages below; the file name prefix names the style. Each style stays under its",
    "own licence; CC BY and CC BY-SA require this attribution to be kept with the images.",
    "",
    "| prefix | split | art style | package | licence (package.json) | author |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    "Captions are the English CLDR names and keywords, Unicode character names and community shortcodes",
    "as published in `emojibase-data` (MIT, Miles Johnson; CLDR data under the Unicode License), filtered",
    "with OpenMoji's own tags from `openmoji` (CC-BY-SA-4.0).",
    "",
  ].join("\n");
}
