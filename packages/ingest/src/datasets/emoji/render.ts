import sharp from "sharp";

export const IMAGE_SIZE = 299;
/** Size every style is drawn at in low-res mode, so no style is given away by sharpness. */
export const LOW_RES_SIZE = 64;
/** Light grey, not white: white emoji (ghost, cloud, white flag) vanish on a white background. */
export const BACKGROUND = { r: 232, g: 232, b: 232 } as const;

/**
 * Rasterises one SVG to a 299×299 RGB PNG on the grey background. Same SVG, same sharp/libvips
 * version → same bytes (no timestamps or metadata are written).
 */
export async function renderPng(svgAt: (size: number) => string, lowRes: boolean): Promise<Buffer> {
  const size = lowRes ? LOW_RES_SIZE : IMAGE_SIZE;
  let img = sharp(Buffer.from(svgAt(size)), { density: 72, failOn: "error" }).flatten({
    background: BACKGROUND,
  });
  if (lowRes) {
    const small = await img.removeAlpha().png().toBuffer();
    img = sharp(small).resize(IMAGE_SIZE, IMAGE_SIZE, { kernel: "cubic", fit: "fill" });
  }
  const { data, info } = await img
    .resize(IMAGE_SIZE, IMAGE_SIZE, { fit: "contain", background: BACKGROUND })
    .removeAlpha()
    .toColourspace("srgb")
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== IMAGE_SIZE || info.height !== IMAGE_SIZE || info.channels !== 3) {
    throw new Error(
      `rendered ${info.width}x${info.height}x${info.channels}, expected ${IMAGE_SIZE}x${IMAGE_SIZE}x3`,
    );
  }
  return data;
}
