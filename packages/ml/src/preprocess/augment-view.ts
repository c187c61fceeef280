// Augmented views of a training image: the same picture as the clean decode path sees it, redrawn the
// way images reach capflow in the wild (small and enlarged, blurred, JPEG-compressed, on another
// background, smaller and off-centre). The feature workers encode a view as an extra vector tied to its
// source image; only the trainer uses it (packages/common/src/features/shard-format.ts).
//
// Deterministic by construction: a view's plan is a pure function of (image bytes' sha256, view index,
// recipe), and every step is a libvips operation on raw pixels (no timestamps, no threads racing), so a
// redone job writes the same vector (the decode-image tests check the bytes).
import { createHash } from "node:crypto";
import sharp, { type Sharp } from "sharp";
import { DEFAULT_AUGMENT_RECIPE, type AugmentRecipe } from "@capflow/common";

export type Rgb = { r: number; g: number; b: number };

export type UpKernel = "nearest" | "linear" | "cubic" | "lanczos3";

/** What one view does, in order: background (at flatten), geometry, low resolution, blur, JPEG. */
export interface ViewPlan {
  /** Colour transparent pixels are flattened onto; undefined: the clean path's background. */
  background?: Rgb;
  /** Drawn at `size`×`size` (of 299) with its top-left corner at (left, top), the rest background. */
  geometry?: { size: number; left: number; top: number };
  /** Shrunk to `size` px square, enlarged back with `kernel`. */
  lowRes?: { size: number; kernel: UpKernel };
  /** Gaussian blur. */
  blur?: { sigma: number };
  /** Re-encoded as JPEG at this quality. */
  jpeg?: { quality: number };
}

/** A small seeded generator (mulberry32) drawing from a sha256 of the seed: same seed, same draws. */
function generator(seed: string): () => number {
  let s = createHash("sha256").update(seed).digest().readUInt32LE(0);
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UP_KERNELS: readonly UpKernel[] = ["nearest", "linear", "cubic", "lanczos3"];
/** Backgrounds that transparent images meet: pages (white), dark mode, and anything else. */
const PAGE_BACKGROUNDS: readonly Rgb[] = [
  { r: 255, g: 255, b: 255 },
  { r: 0, g: 0, b: 0 },
  { r: 30, g: 30, b: 30 },
];

/**
 * The plan of view `view` (≥ 1) of the image whose bytes hash to `imageSha256`. Every draw is made
 * whether or not its operation is used, so one recipe's choice never shifts another's numbers.
 */
export function planView(
  imageSha256: string,
  view: number,
  recipe: AugmentRecipe = DEFAULT_AUGMENT_RECIPE,
  imageSize = 299,
): ViewPlan {
  if (!Number.isInteger(view) || view < 1) throw new RangeError(`view must be an integer ≥ 1, got ${view}`);
  const rand = generator(`${imageSha256}:${view}:${recipe}`);
  const between = (lo: number, hi: number) => lo + (hi - lo) * rand();
  const int = (lo: number, hi: number) => Math.min(hi, Math.floor(between(lo, hi + 1)));

  const u = Array.from({ length: 5 }, () => rand()); // whether each operation applies (mix)
  const bgPick = rand();
  const background: Rgb =
    bgPick < 0.6
      ? PAGE_BACKGROUNDS[Math.min(PAGE_BACKGROUNDS.length - 1, Math.floor((bgPick / 0.6) * 3))]!
      : { r: int(0, 255), g: int(0, 255), b: int(0, 255) };
  const size = int(Math.round(imageSize * 0.6), imageSize - 1);
  const geometry = { size, left: int(0, imageSize - size), top: int(0, imageSize - size) };
  // 32-96 px: the sizes emoji and icons are drawn at on screens (the 64-px check set sits inside).
  const lowRes = { size: int(32, 96), kernel: UP_KERNELS[int(0, UP_KERNELS.length - 1)]! };
  const blur = { sigma: Number(between(0.6, 2).toFixed(3)) };
  const jpeg = { quality: int(25, 80) };

  switch (recipe) {
    case "lowres":
      return { lowRes };
    case "blur":
      return { blur };
    case "jpeg":
      return { jpeg };
    case "background":
      return { background };
    case "geometry":
      return { geometry };
    case "mix": {
      const plan: ViewPlan = {};
      if (u[0]! < 0.5) plan.background = background;
      if (u[1]! < 0.4) plan.geometry = geometry;
      if (u[2]! < 0.6) plan.lowRes = lowRes;
      if (u[3]! < 0.3) plan.blur = blur;
      if (u[4]! < 0.3) plan.jpeg = jpeg;
      // A view that changes nothing would repeat the clean vector: give it the low resolution, the
      // operation the 64-px check set measures.
      if (!plan.geometry && !plan.lowRes && !plan.blur && !plan.jpeg) plan.lowRes = lowRes;
      return plan;
    }
  }
}

/**
 * Applies a plan's pixel operations to a `size`×`size` RGB image (the clean path's output, already
 * flattened onto the plan's background) and returns an RGB image of the same size.
 */
export async function applyView(rgb: Buffer, size: number, plan: ViewPlan, fill: Rgb): Promise<Buffer> {
  const raw = { width: size, height: size, channels: 3 as const };
  const toRaw = async (img: Sharp) => {
    const { data, info } = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 3)
      throw new Error(`augmented view came out ${info.width}×${info.height}×${info.channels}`);
    return data;
  };
  let out = rgb;
  if (plan.geometry) {
    const { size: s, left, top } = plan.geometry;
    out = await toRaw(
      sharp(out, { raw })
        .resize(s, s, { fit: "fill", kernel: "linear" })
        .extend({ left, top, right: size - s - left, bottom: size - s - top, background: fill }),
    );
  }
  if (plan.lowRes) {
    const small = await sharp(out, { raw })
      .resize(plan.lowRes.size, plan.lowRes.size, { fit: "fill", kernel: "lanczos3" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    out = await toRaw(
      sharp(small.data, { raw: { width: small.info.width, height: small.info.height, channels: 3 } }).resize(
        size,
        size,
        { fit: "fill", kernel: plan.lowRes.kernel },
      ),
    );
  }
  if (plan.blur) out = await toRaw(sharp(out, { raw }).blur(plan.blur.sigma));
  if (plan.jpeg) {
    const jpg = await sharp(out, { raw }).jpeg({ quality: plan.jpeg.quality, mozjpeg: false }).toBuffer();
    out = await toRaw(sharp(jpg));
  }
  return out;
}
