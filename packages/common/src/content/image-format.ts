/** The image formats capflow accepts, named by their magic bytes (never by a file name). */
export const IMAGE_FORMATS = ["jpeg", "png", "gif", "webp"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

const EXTENSION: Record<ImageFormat, string> = { jpeg: "jpg", png: "png", gif: "gif", webp: "webp" };

/**
 * The accepted format a buffer's first bytes name, or undefined. The decoder checks this before sharp
 * sees the bytes (libvips would otherwise hand an SVG or HEIF to whichever loader claims it), ingest
 * names stored objects by it, and the report labels inline images with it.
 */
export function sniffImageFormat(b: Uint8Array): ImageFormat | undefined {
  const ascii = (from: number, to: number) => Buffer.from(b.subarray(from, to)).toString("latin1");
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && ascii(0, 8) === "\x89PNG\r\n\x1a\n") return "png";
  if (b.length >= 6 && /^GIF8[79]a$/.test(ascii(0, 6))) return "gif";
  if (b.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  return undefined;
}

/** The extension an image is stored under: its sniffed format's, or `bin` (quarantined later, with a reason). */
export const imageExtension = (b: Uint8Array): string => {
  const format = sniffImageFormat(b);
  return format ? EXTENSION[format] : "bin";
};

export const imageMime = (format: ImageFormat): string => `image/${format}`;
