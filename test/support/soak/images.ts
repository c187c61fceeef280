import { createHash } from "node:crypto";
import sharp from "sharp";
import { keys, type ObjectStore } from "@capflow/common";
import { drawImage } from "../images.ts";
import { badImageCorpus } from "../fault/bad-images.ts";

export interface SoakImage {
  id: string;
  key: string;
  /** Expected to be refused by preprocessImage (a reason code, never a vector). */
  bad: boolean;
}

const FORMATS = ["png", "jpeg", "webp", "gif"] as const;
const SIZES = [64, 96, 160, 299, 480, 800] as const;
// Kinds of the bad-image corpus that preprocessImage refuses; the others there (CMYK, 16-bit, grey,
// RGBA, EXIF orientations, animated) decode, and a few of those are mixed into the good ones.
const REFUSED = new Set(["truncated", "corrupt", "text", "empty", "tiff", "svg", "heic-like"]);
const ODD_BUT_VALID = new Set([
  "cmyk",
  "16-bit",
  "grey",
  "grey+alpha",
  "rgba",
  "exif-orientation",
  "animated",
]);

/**
 * `good` drawn images of varied size (64–800 px) and format (PNG, JPEG, WebP, GIF, and some CMYK,
 * 16-bit, grey, RGBA, EXIF-rotated, animated ones), then about `badShare` of refused ones (truncated,
 * corrupt, text, 0-byte, TIFF, SVG, HEIC-like), interleaved; all put into the store under their
 * content key. Truncated/corrupt files that libvips still decodes are not marked bad: the soak
 * checks memory, and test 8 owns the reason codes.
 */
export async function putSoakImages(store: ObjectStore, good: number, badShare = 0.05): Promise<SoakImage[]> {
  const corpus = await badImageCorpus();
  const refused = corpus.filter((c) => REFUSED.has(c.kind));
  const odd = corpus.filter((c) => ODD_BUT_VALID.has(c.kind));
  const out: SoakImage[] = [];
  const put = async (bytes: Buffer, ext: string, bad: boolean) => {
    const key = keys.image(createHash("sha256").update(bytes).digest("hex"), ext);
    await store.put(key, bytes);
    out.push({ id: `soak-${out.length}`, key, bad });
  };
  const badEvery = Math.max(2, Math.round(1 / badShare));
  for (let g = 0, b = 0; g < good;) {
    if ((out.length + 1) % badEvery === 0 && refused.length > 0) {
      const c = refused[(b++ * 7) % refused.length]!;
      await put(c.bytes, "jpg", true);
      continue;
    }
    if (g % 10 === 9 && odd.length > 0) {
      await put(odd[(g * 3) % odd.length]!.bytes, "png", false);
    } else {
      const format = FORMATS[g % FORMATS.length]!;
      const size = SIZES[(g * 5 + Math.floor(g / 6)) % SIZES.length]!;
      const png = await drawImage(g, "png", size);
      const bytes =
        format === "png"
          ? png
          : format === "jpeg"
            ? await sharp(png).jpeg({ quality: 85 }).toBuffer()
            : format === "webp"
              ? await sharp(png).webp({ quality: 80 }).toBuffer()
              : await sharp(png).gif().toBuffer();
      await put(bytes, format === "jpeg" ? "jpg" : format, false);
    }
    g++;
  }
  return out;
}
