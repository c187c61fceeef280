// Safe decode + exactly Keras `inception_v3.preprocess_input` ("tf" mode: x/127.5 − 1 on RGB in
// 0..255) at 299×299, following the decoding rules in docs/reliability.md ("Decoding untrusted images"):
//   - Buffers only (a string would be read as a file path by sharp) → else 'invalid'
//   - only JPEG, PNG, WebP and GIF, detected from the bytes (never the file name) → else 'format'
//   - declared width×height checked against the pixel limit before any decoding → 'too_large'
//   - failOn 'error' (corrupt or truncated data fails) → 'decode'; a processing timeout → 'timeout'
//   - first page/frame only, EXIF auto-orient, sRGB, exactly 3 channels, 8 bits per channel.
//
// Alpha: Keras `load_img` (PIL `convert('RGB')`) simply drops alpha, so what shows under
// transparent pixels is whatever RGB the encoder left there (often black, sometimes garbage). We
// flatten onto ALPHA_BACKGROUND, light grey 232, instead (configurable). The emoji dataset is drawn
// transparent (packages/ingest/src/datasets/emoji/render.ts) and gets its background here, like every
// upload does: one place decides what shows under alpha, so training images and uploads agree. Grey,
// not white: white emoji (ghost, cloud, white flag) vanish on white. Images without alpha are
// unaffected; augmented training views (./augment-view.ts) put transparent images on other colours.
//
// Resize: stretch to 299×299 ignoring aspect ratio (fit 'fill'), as Keras
// `load_img(target_size=(299, 299))` does; Keras defaults to nearest-neighbour, we use sharp's
// linear kernel (bilinear-ish, with sharp's anti-aliased shrink on large downscales).
import { createHash } from "node:crypto";
import {
  DEFAULT_AUGMENT_RECIPE,
  IMAGE_FORMATS,
  sniffImageFormat,
  type AugmentRecipe,
  type DecodeFailureReason,
} from "@capflow/common";
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from "sharp";
import { applyView, planView, type Rgb } from "./augment-view.ts";

export const IMAGE_SIZE = 299;
export const PIXELS_LENGTH = IMAGE_SIZE * IMAGE_SIZE * 3;
export const ALLOWED_FORMATS = IMAGE_FORMATS;
export const DEFAULT_LIMIT_INPUT_PIXELS = 50_000_000;
/** What shows under transparent pixels, for training images and uploads alike (see the top). */
export const ALPHA_BACKGROUND: Readonly<Rgb> = { r: 232, g: 232, b: 232 };

export interface PreprocessOptions {
  /** Largest accepted declared width×height (default 50 megapixels). */
  limitInputPixels?: number;
  /** Processing timeout in seconds (default 10). */
  timeoutSeconds?: number;
  /** Colour transparent pixels are composited onto (default ALPHA_BACKGROUND, grey 232). */
  background?: Rgb;
  /**
   * An augmented training view (≥ 1) instead of the clean image (./augment-view.ts): same bytes,
   * view and recipe → same pixels. Never used for validation, test or serving.
   */
  view?: { index: number; recipe?: AugmentRecipe };
}

export type PreprocessResult =
  { ok: true; pixels: Float32Array } | { ok: false; reason: DecodeFailureReason; message: string };

const fail = (reason: DecodeFailureReason, message: string): PreprocessResult => ({
  ok: false,
  reason,
  message,
});

function classify(err: unknown, fallback: DecodeFailureReason): PreprocessResult {
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) return fail("format", message);
  if (/pixel limit/i.test(message)) return fail("too_large", message);
  if (/timeout/i.test(message)) return fail("timeout", message);
  return fail(fallback, message);
}

/** Decodes an image and returns 299×299×3 NHWC floats in [-1, 1], or a reason code. Never throws. */
export async function preprocessImage(buf: Buffer, opts: PreprocessOptions = {}): Promise<PreprocessResult> {
  if (!Buffer.isBuffer(buf))
    return fail("invalid", `expected a Buffer, got ${buf === null ? "null" : typeof buf}`);
  if (buf.length === 0) return fail("empty", "0-byte input");
  const limit = opts.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;
  const timeoutSeconds = opts.timeoutSeconds ?? 10;
  const cleanBackground = opts.background ?? ALPHA_BACKGROUND;
  const plan = opts.view
    ? planView(
        createHash("sha256").update(buf).digest("hex"),
        opts.view.index,
        opts.view.recipe ?? DEFAULT_AUGMENT_RECIPE,
        IMAGE_SIZE,
      )
    : undefined;
  const background = plan?.background ?? cleanBackground;
  const inputOpts: SharpOptions = { failOn: "error", limitInputPixels: limit, pages: 1 };
  // Sniff the bytes before sharp sees them: `metadata()` runs whichever libvips loader claims the
  // input (libheif, librsvg, libtiff, ...), so without this a HEIF container reached libheif and came
  // back as 'decode', and an SVG reached librsvg (XML entity expansion) before the format check.
  const sniffed = sniffImageFormat(buf);
  if (!sniffed) return fail("format", `not a ${ALLOWED_FORMATS.join(", ")} file (magic bytes)`);

  let meta: Metadata;
  try {
    meta = await sharp(buf, inputOpts).metadata();
  } catch (err) {
    return classify(err, "decode");
  }
  const format = meta.format as string | undefined;
  if (!format || format !== sniffed) {
    return fail(
      "format",
      `format ${format ?? "unknown"} not accepted (allowed: ${ALLOWED_FORMATS.join(", ")})`,
    );
  }
  const w = meta.width ?? 0;
  const h = meta.pageHeight ?? meta.height ?? 0;
  if (!(w > 0 && h > 0)) return fail("decode", `no dimensions in ${format} header`);
  if (w * h > limit) return fail("too_large", `${w}×${h} = ${w * h} pixels > limit ${limit}`);

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(buf, inputOpts)
      .timeout({ seconds: timeoutSeconds })
      .rotate() // EXIF auto-orient, before the resize
      .toColourspace("srgb") // CMYK, grey, 16-bit → 8-bit sRGB
      .flatten({ background })
      .removeAlpha()
      .resize(IMAGE_SIZE, IMAGE_SIZE, { fit: "fill", kernel: "linear" })
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true }));
    if (plan) data = await applyView(data, IMAGE_SIZE, plan, background);
  } catch (err) {
    return classify(err, "decode");
  }
  if (
    info.width !== IMAGE_SIZE ||
    info.height !== IMAGE_SIZE ||
    info.channels !== 3 ||
    data.length !== PIXELS_LENGTH
  ) {
    return fail(
      "decode",
      `unexpected decode output ${info.width}×${info.height}×${info.channels} (${data.length} bytes)`,
    );
  }
  const pixels = new Float32Array(PIXELS_LENGTH);
  for (let i = 0; i < PIXELS_LENGTH; i++) pixels[i] = data[i]! / 127.5 - 1;
  if (pixels.length !== PIXELS_LENGTH) throw new Error("unreachable: pixel count");
  return { ok: true, pixels };
}
