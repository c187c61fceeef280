// The shipped calibration set: emoji drawn by two vendors (Noto, Twemoji; npm packages pinned in
// package.json), rendered like the emoji dataset (299×299 on light grey) and preprocessed exactly as
// the feature worker does. Same package versions → same images, so a quantised encoder is
// reproducible without any dataset at hand.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import sharp from "sharp";
import { preprocessImage } from "../preprocess/decode-image.ts";
import { IMAGE_SIZE } from "./types.ts";

const require = createRequire(import.meta.url);
const BACKGROUND = { r: 232, g: 232, b: 232 } as const;
// Literal specifiers, so that dependency checkers see both packages used.
const VENDORS: ReadonlyArray<readonly [string, () => string]> = [
  ["noto", () => require.resolve("@iconify-json/noto/icons.json")],
  ["twemoji", () => require.resolve("@iconify-json/twemoji/icons.json")],
];

interface IconSet {
  width?: number;
  height?: number;
  icons: Record<string, { body: string; width?: number; height?: number; left?: number; top?: number }>;
}

export interface CalibrationIcon {
  vendor: string;
  name: string;
  svg: string;
}

let icons: CalibrationIcon[] | undefined;

/**
 * Every icon of both vendors, interleaved (noto 0, twemoji 0, noto 1, …) in a fixed pseudo-random
 * order, so any prefix mixes vendors and subjects rather than taking one alphabetical run.
 */
export function calibrationIcons(): CalibrationIcon[] {
  if (icons) return icons;
  const lists = VENDORS.map(([vendor, iconsFile]) => {
    const set = JSON.parse(readFileSync(iconsFile(), "utf8")) as IconSet;
    return Object.keys(set.icons)
      .sort()
      .map((name, i) => ({ name, key: hash32(`${vendor}:${name}`), i }))
      .sort((a, b) => a.key - b.key || a.i - b.i)
      .map(({ name }) => {
        const ic = set.icons[name]!;
        const w = ic.width ?? set.width ?? 16;
        const h = ic.height ?? set.height ?? 16;
        const svg =
          `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${IMAGE_SIZE}" ` +
          `height="${IMAGE_SIZE}" viewBox="${ic.left ?? 0} ${ic.top ?? 0} ${w} ${h}">${ic.body}</svg>`;
        return { vendor, name, svg };
      });
  });
  const out: CalibrationIcon[] = [];
  for (let i = 0; out.length < lists.reduce((n, l) => n + l.length, 0); i++)
    for (const l of lists) if (i < l.length) out.push(l[i]!);
  icons = out;
  return out;
}

/** FNV-1a: a stable shuffle key. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Draws one icon and preprocesses it; undefined when it does not draw. */
async function drawIcon(icon: CalibrationIcon): Promise<Float32Array | undefined> {
  let png: Buffer;
  try {
    png = await sharp(Buffer.from(icon.svg), { failOn: "error" })
      .flatten({ background: BACKGROUND })
      .png()
      .toBuffer();
  } catch {
    return undefined;
  }
  const r = await preprocessImage(png, { background: BACKGROUND });
  return r.ok ? r.pixels : undefined;
}

/**
 * `n` preprocessed 299×299×3 inputs drawn from icon `from` on, in batches of `batch` (icons that fail
 * to draw are skipped), so that hundreds of images never sit in memory at once.
 */
export async function* calibrationBatches(
  from: number,
  n: number,
  batch: number,
): AsyncGenerator<Float32Array[]> {
  const all = calibrationIcons();
  let given = 0;
  let pending: Float32Array[] = [];
  for (let i = from; i < all.length && given + pending.length < n; i++) {
    const px = await drawIcon(all[i]!);
    if (!px) continue;
    pending.push(px);
    if (pending.length === batch) {
      given += pending.length;
      yield pending;
      pending = [];
    }
  }
  if (pending.length) {
    given += pending.length;
    yield pending;
  }
  if (given < n)
    throw new Error(`the calibration set has only ${given} drawable images from ${from}, need ${n}`);
}

/** Icons [from, …) as `n` preprocessed inputs. */
export async function calibrationImages(from: number, n: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for await (const b of calibrationBatches(from, n, 8)) out.push(...b);
  return out;
}
