import sharp from "sharp";

export const IMAGE_SIZE = 299;
/** Size every style is drawn at in low-res mode, so no style is given away by sharpness. */
export const LOW_RES_SIZE = 64;

/**
 * Rasterises one SVG to a 299×299 RGBA PNG, transparent around the drawing. The background is not
 * baked in: the decode path flattens alpha onto one colour for training images and uploads alike
 * (`ALPHA_BACKGROUND` in @capflow/common's decode-image.ts). Before, the images were drawn on grey 232
 * while uploads were flattened onto white, so an emoji PNG sent to the API met a background no
 * training image had.
 *
 * `drawAt` (default 299) draws the SVG that many pixels square and enlarges it to 299 with a cubic
 * kernel: an emoji as small screens show it (the `--low-res` styles, the `--test-render` check set).
 * Same SVG, same sharp/libvips version → same bytes (no timestamps or metadata are written).
 */
export async function renderPng(
  svgAt: (size: number) => string,
  drawAt: number = IMAGE_SIZE,
): Promise<Buffer> {
  if (!Number.isInteger(drawAt) || drawAt < 8 || drawAt > IMAGE_SIZE)
    throw new RangeError(`draw size must be an integer in 8..${IMAGE_SIZE}, got ${drawAt}`);
  const clear = { r: 0, g: 0, b: 0, alpha: 0 };
  const svg = sharp(Buffer.from(svgAt(drawAt)), { density: 72, failOn: "error" }).ensureAlpha();
  // One resize per sharp pipeline (a second call replaces the first), so the enlargement is its own.
  const img =
    drawAt === IMAGE_SIZE
      ? svg.resize(IMAGE_SIZE, IMAGE_SIZE, { fit: "contain", background: clear })
      : sharp(
          await svg.resize(drawAt, drawAt, { fit: "contain", background: clear }).png().toBuffer(),
        ).resize(IMAGE_SIZE, IMAGE_SIZE, { kernel: "cubic", fit: "fill" });
  const { data, info } = await img
    .toColourspace("srgb")
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== IMAGE_SIZE || info.height !== IMAGE_SIZE || info.channels !== 4) {
    throw new Error(
      `rendered ${info.width}x${info.height}x${info.channels}, expected ${IMAGE_SIZE}x${IMAGE_SIZE}x4`,
    );
  }
  return data;
}
