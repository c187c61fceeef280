import { crc32 } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { PIXELS_LENGTH, preprocessImage, type PreprocessResult } from "./decode-image.ts";

const S = 299;

function rawRgb(w: number, h: number, f: (x: number, y: number) => [number, number, number]): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [r, g, bl] = f(x, y);
      const i = (y * w + x) * 3;
      b[i] = r;
      b[i + 1] = g;
      b[i + 2] = bl;
    }
  return b;
}

function pattern(x: number, y: number): [number, number, number] {
  return [(x * 7 + y * 3) % 256, (x * y + 11) % 256, (255 - x + y * 5) % 256];
}

function expectValid(r: PreprocessResult): Float32Array {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}: ${r.message}`);
  expect(r.pixels).toBeInstanceOf(Float32Array);
  expect(r.pixels.length).toBe(PIXELS_LENGTH);
  for (const v of r.pixels) if (!(Number.isFinite(v) && v >= -1 && v <= 1)) throw new Error(`bad value ${v}`);
  return r.pixels;
}

function expectReason(r: PreprocessResult, reason: string): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.reason).toBe(reason);
}

/** RGB (0..255) of output pixel (x, y), undoing x/127.5 − 1. */
function rgbAt(p: Float32Array, x: number, y: number): number[] {
  const i = (y * S + x) * 3;
  return [0, 1, 2].map((c) => Math.round((p[i + c]! + 1) * 127.5));
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

describe("preprocessImage", () => {
  it("is exactly x/127.5 - 1 of the RGB pixels (lossless 299×299 PNG)", async () => {
    const raw = rawRgb(S, S, pattern);
    const png = await sharp(raw, { raw: { width: S, height: S, channels: 3 } })
      .png()
      .toBuffer();
    const p = expectValid(await preprocessImage(png));
    let maxDiff = 0;
    for (let i = 0; i < PIXELS_LENGTH; i++)
      maxDiff = Math.max(maxDiff, Math.abs(p[i]! - Math.fround(raw[i]! / 127.5 - 1)));
    expect(maxDiff).toBe(0);
    expect(p[0]).toBe(Math.fround(raw[0]! / 127.5 - 1));
  });

  it("stretches a non-square image to 299×299 and keeps colours", async () => {
    const raw = rawRgb(600, 200, (x) => (x < 300 ? [255, 0, 0] : [0, 0, 255]));
    const jpg = await sharp(raw, { raw: { width: 600, height: 200, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
    const p = expectValid(await preprocessImage(jpg));
    const left = rgbAt(p, 10, 150);
    const right = rgbAt(p, 290, 150);
    expect(left[0]).toBeGreaterThan(230);
    expect(left[2]).toBeLessThan(30);
    expect(right[2]).toBeGreaterThan(230);
    expect(right[0]).toBeLessThan(30);
  });

  it("auto-orients by EXIF (orientation 6) before the resize", async () => {
    // Stored 200×100: left half red, right half blue, a green top-left corner. Orientation 6 means
    // "rotate 90° clockwise to display": shown 100×200, red on top, blue below, green top-right.
    const raw = rawRgb(200, 100, (x, y) =>
      x < 20 && y < 20 ? [0, 255, 0] : x < 100 ? [255, 0, 0] : [0, 0, 255],
    );
    const jpg = await sharp(raw, { raw: { width: 200, height: 100, channels: 3 } })
      .jpeg({ quality: 95 })
      .withExif({ IFD0: {} })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(jpg).metadata()).orientation).toBe(6);
    const p = expectValid(await preprocessImage(jpg));
    const topLeft = rgbAt(p, 5, 100);
    const bottomLeft = rgbAt(p, 5, 250);
    const cornerTopRight = rgbAt(p, 290, 5);
    expect(topLeft[0]).toBeGreaterThan(200); // red on top
    expect(topLeft[2]).toBeLessThan(50);
    expect(bottomLeft[2]).toBeGreaterThan(200); // blue below
    expect(bottomLeft[0]).toBeLessThan(50);
    expect(cornerTopRight[1]).toBeGreaterThan(200); // green corner moved to top-right
    expect(cornerTopRight[0]).toBeLessThan(60);
  });

  it("converts CMYK JPEG to sRGB", async () => {
    const raw = rawRgb(120, 80, pattern);
    const cmyk = await sharp(raw, { raw: { width: 120, height: 80, channels: 3 } })
      .toColourspace("cmyk")
      .jpeg()
      .toBuffer();
    const m = await sharp(cmyk).metadata();
    expect(m.space).toBe("cmyk");
    expectValid(await preprocessImage(cmyk));
  });

  it("grey+alpha PNG gives 3 channels, transparent → ALPHA_BACKGROUND (grey 232)", async () => {
    const w = 64;
    const h = 64;
    const ga = Buffer.alloc(w * h * 2);
    for (let i = 0; i < w * h; i++) {
      ga[i * 2] = 40; // dark grey
      ga[i * 2 + 1] = i % w < w / 2 ? 255 : 0; // left opaque, right transparent
    }
    const png = await sharp(ga, { raw: { width: w, height: h, channels: 2 } })
      .toColourspace("b-w")
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(2);
    const p = expectValid(await preprocessImage(png));
    const l = rgbAt(p, 20, 150);
    const r = rgbAt(p, 280, 150);
    expect(Math.max(...l.map((v) => Math.abs(v - 40)))).toBeLessThanOrEqual(2);
    expect(r).toEqual([232, 232, 232]);
  });

  it("RGBA and plain grey PNG, WebP and GIF are accepted", async () => {
    const rgba = await sharp({
      create: { width: 50, height: 40, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    expectValid(await preprocessImage(rgba));
    const grey = await sharp(rawRgb(50, 40, pattern), { raw: { width: 50, height: 40, channels: 3 } })
      .toColourspace("b-w")
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const pg = expectValid(await preprocessImage(grey));
    const [r, g, b] = rgbAt(pg, 100, 100);
    expect(r).toBe(g);
    expect(g).toBe(b);
    const webp = await sharp(rawRgb(50, 40, pattern), { raw: { width: 50, height: 40, channels: 3 } })
      .webp()
      .toBuffer();
    expectValid(await preprocessImage(webp));
    const gif = await sharp(rawRgb(50, 40, pattern), { raw: { width: 50, height: 40, channels: 3 } })
      .gif()
      .toBuffer();
    expectValid(await preprocessImage(gif));
  });

  it("animated GIF and WebP: first frame only", async () => {
    const frame = (r: number, b: number) =>
      sharp({ create: { width: 40, height: 30, channels: 3, background: { r, g: 0, b } } })
        .png()
        .toBuffer();
    const frames = [await frame(255, 0), await frame(0, 255)];
    for (const fmt of ["gif", "webp"] as const) {
      const joined = sharp(frames, { join: { animated: true } });
      const anim = await (fmt === "gif" ? joined.gif({ loop: 0 }) : joined.webp({ loop: 0 })).toBuffer();
      expect((await sharp(anim).metadata()).pages).toBe(2);
      const p = expectValid(await preprocessImage(anim));
      for (const [x, y] of [
        [10, 10],
        [150, 150],
        [290, 290],
      ] as const) {
        const [r, , b] = rgbAt(p, x, y);
        expect(r).toBeGreaterThan(200); // frame 1 (red) everywhere, not frames stacked
        expect(b).toBeLessThan(60);
      }
    }
  });

  it("16-bit PNG → 8-bit", async () => {
    const raw = rawRgb(S, S, pattern);
    const png16 = await sharp(raw, { raw: { width: S, height: S, channels: 3 } })
      .toColourspace("rgb16")
      .png()
      .toBuffer();
    const m = await sharp(png16).metadata();
    expect(m.depth).toBe("ushort");
    const p = expectValid(await preprocessImage(png16));
    let maxDiff = 0;
    for (let i = 0; i < PIXELS_LENGTH; i++)
      maxDiff = Math.max(maxDiff, Math.abs(p[i]! - (raw[i]! / 127.5 - 1)));
    expect(maxDiff).toBeLessThanOrEqual(1 / 127.5 + 1e-6);
  });

  it("truncated JPEG → decode", async () => {
    const jpg = await sharp(rawRgb(300, 300, pattern), { raw: { width: 300, height: 300, channels: 3 } })
      .jpeg()
      .toBuffer();
    expectReason(await preprocessImage(jpg.subarray(0, Math.floor(jpg.length / 2))), "decode");
  });

  it("corrupt PNG (bad IDAT) → decode", async () => {
    const png = Buffer.from(
      await sharp(rawRgb(100, 100, pattern), { raw: { width: 100, height: 100, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const idat = png.indexOf("IDAT");
    for (let i = idat + 10; i < idat + 60; i++) png[i] = (png[i]! ^ 0x5a) & 0xff;
    expectReason(await preprocessImage(png), "decode");
  });

  it("corrupt JPEG (garbage after the header) → decode or a valid image", async () => {
    const jpg = Buffer.from(
      await sharp(rawRgb(100, 100, pattern), { raw: { width: 100, height: 100, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    for (let i = 200; i < jpg.length - 2; i += 7) jpg[i] = 0xff;
    const r = await preprocessImage(jpg);
    if (r.ok) expectValid(r);
    else expect(r.reason).toBe("decode");
  });

  it("rejects SVG, TIFF, a text file named .jpg, 0 bytes and non-Buffers", async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>',
    );
    expectReason(await preprocessImage(svg), "format");
    const tiff = await sharp(rawRgb(20, 20, pattern), { raw: { width: 20, height: 20, channels: 3 } })
      .tiff()
      .toBuffer();
    expectReason(await preprocessImage(tiff), "format");
    expectReason(await preprocessImage(Buffer.from("this is not an image, despite cat.jpg\n")), "format");
    expectReason(await preprocessImage(Buffer.alloc(0)), "empty");
    expectReason(await preprocessImage("/etc/passwd" as unknown as Buffer), "invalid");
    expectReason(await preprocessImage(new Uint8Array(10) as unknown as Buffer), "invalid");
  });

  it("rejects images over the pixel limit before decoding (declared 30000×30000 PNG)", async () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(30000, 0);
    ihdr.writeUInt32BE(30000, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    const bomb = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk("IHDR", ihdr),
      pngChunk("IDAT", Buffer.alloc(16)),
      pngChunk("IEND", Buffer.alloc(0)),
    ]);
    expectReason(await preprocessImage(bomb), "too_large");
    const small = await sharp(rawRgb(100, 100, pattern), { raw: { width: 100, height: 100, channels: 3 } })
      .png()
      .toBuffer();
    expectReason(await preprocessImage(small, { limitInputPixels: 9999 }), "too_large");
  });
});
