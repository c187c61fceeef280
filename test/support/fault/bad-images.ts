import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { rng } from "@capflow/trainer";
import { drawImage } from "../images.ts";

// Deterministic PRNG (the trainer's mulberry32): fuzz cases are regenerated from (seed, index) after a crash.
export { rng };

/** A named test input and what it is meant to exercise. */
export interface Case {
  name: string;
  kind: string;
  bytes: Buffer;
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid PNG header declaring width×height RGB, with a little real IDAT data: a pixel-flood bomb. */
export function declaredPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    // A few rows of zeros: compresses ~1000:1, the classic decompression bomb's payload.
    pngChunk("IDAT", deflateSync(Buffer.alloc(Math.min(width * 3 + 1, 1 << 20) * 4))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

async function animated(frames: number, size: number, format: "gif" | "webp"): Promise<Buffer> {
  const frame = size * size * 4;
  const raw = Buffer.alloc(frame * frames);
  for (let f = 0; f < frames; f++) raw.fill((f * 37) % 256, f * frame, (f + 1) * frame);
  const img = sharp(raw, { raw: { width: size, height: size * frames, channels: 4, pageHeight: size } });
  return format === "gif" ? img.gif().toBuffer() : img.webp({ quality: 50 }).toBuffer();
}

/** The bomb cases: each must be refused before decoding allocates its declared size. */
export async function bombs(): Promise<Case[]> {
  return [
    { name: "png-30000x30000", kind: "bomb", bytes: declaredPng(30_000, 30_000) },
    { name: "png-65535x65535", kind: "bomb", bytes: declaredPng(65_535, 65_535) },
    { name: "gif-1000-frames", kind: "bomb", bytes: await animated(1000, 16, "gif") },
    {
      name: "svg-huge",
      kind: "bomb",
      bytes: Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="200000" height="200000"><rect width="100%" height="100%"/></svg>`,
      ),
    },
  ];
}

/**
 * The bad-image corpus (docs/reliability.md test 8), ≥ 300 files: truncated and corrupt JPEG/PNG, 0-byte,
 * text named .jpg, CMYK, 16-bit, grey, grey+alpha, RGBA, EXIF orientations 1–8, animated GIF/WebP,
 * TIFF, SVG, HEIC-like bytes. Every one must give a vector or a reason code.
 */
export async function badImageCorpus(): Promise<Case[]> {
  const out: Case[] = [];
  const add = (kind: string, name: string, bytes: Buffer) => out.push({ kind, name, bytes });
  const random = rng(8);
  for (let seed = 0; seed < 12; seed++) {
    const png = await drawImage(seed, "png", 64);
    const jpg = await drawImage(seed, "jpeg", 64);
    const base = sharp(png);
    for (const cut of [0.02, 0.1, 0.3, 0.5, 0.8, 0.95]) {
      add("truncated", `trunc-${seed}-${cut}.png`, png.subarray(0, Math.floor(png.length * cut)));
      add("truncated", `trunc-${seed}-${cut}.jpg`, jpg.subarray(0, Math.floor(jpg.length * cut)));
    }
    for (let k = 0; k < 3; k++) {
      for (const [ext, src] of [
        ["png", png],
        ["jpg", jpg],
      ] as const) {
        const b = Buffer.from(src);
        for (let n = 0; n < 8; n++)
          b[16 + Math.floor(random() * (b.length - 16))] = Math.floor(random() * 256);
        add("corrupt", `corrupt-${seed}-${k}.${ext}`, b);
      }
    }
    add("cmyk", `cmyk-${seed}.jpg`, await base.clone().toColourspace("cmyk").jpeg().toBuffer());
    add("16-bit", `rgb16-${seed}.png`, await base.clone().toColourspace("rgb16").png().toBuffer());
    add("grey", `grey-${seed}.png`, await base.clone().greyscale().png().toBuffer());
    add("grey", `grey-${seed}.jpg`, await base.clone().greyscale().jpeg().toBuffer());
    add("grey+alpha", `greya-${seed}.png`, await base.clone().greyscale().ensureAlpha(0.5).png().toBuffer());
    add("rgba", `rgba-${seed}.png`, await base.clone().ensureAlpha(0.3).png().toBuffer());
    add("rgba", `rgba-${seed}.webp`, await base.clone().ensureAlpha(0.3).webp().toBuffer());
    for (let o = 1; o <= 8; o++)
      add(
        "exif-orientation",
        `orient${o}-${seed}.jpg`,
        await base.clone().withMetadata({ orientation: o }).jpeg().toBuffer(),
      );
    add("tiff", `tiff-${seed}.tif`, await base.clone().tiff().toBuffer());
    add(
      "svg",
      `svg-${seed}.svg`,
      Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle r="${seed + 5}" cx="32" cy="32"/></svg>`,
      ),
    );
    add(
      "heic-like",
      `heic-${seed}.heic`,
      Buffer.concat([
        Buffer.from([0, 0, 0, 0x18]),
        Buffer.from("ftypheic\0\0\0\0mif1heic", "latin1"),
        Buffer.from(Array.from({ length: 200 }, () => Math.floor(random() * 256))),
      ]),
    );
    add("text", `text-${seed}.jpg`, Buffer.from(`I am not an image, number ${seed}\n`));
    add("empty", `empty-${seed}.jpg`, Buffer.alloc(0));
  }
  for (const frames of [2, 5, 20]) {
    add("animated", `anim-${frames}.gif`, await animated(frames, 32, "gif"));
    add("animated", `anim-${frames}.webp`, await animated(frames, 32, "webp"));
  }
  return out;
}

/** Seeds for fuzzing: one small valid file per accepted format. */
export async function fuzzSeeds(): Promise<Buffer[]> {
  const png = await drawImage(3, "png", 48);
  return [
    png,
    await drawImage(4, "jpeg", 48),
    await sharp(png).gif().toBuffer(),
    await sharp(png).webp().toBuffer(),
    await sharp(png).ensureAlpha(0.5).png({ palette: true }).toBuffer(),
    await sharp(png).jpeg({ progressive: true }).toBuffer(),
  ];
}

/** One mutated input, a pure function of (seeds, seed, index). */
export function mutate(seeds: Buffer[], seed: number, index: number): Buffer {
  const random = rng(seed * 1_000_003 + index);
  const src = seeds[Math.floor(random() * seeds.length)]!;
  let b = Buffer.from(src);
  const ops = 1 + Math.floor(random() * 4);
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(random() * b.length);
    switch (Math.floor(random() * 6)) {
      case 0: // flip bits
        b[at] = b[at]! ^ (1 << Math.floor(random() * 8));
        break;
      case 1: // random byte run
        for (let k = 0; k < 1 + random() * 16 && at + k < b.length; k++)
          b[at + k] = Math.floor(random() * 256);
        break;
      case 2: // truncate
        b = b.subarray(0, at);
        break;
      case 3: // duplicate a slice
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 64), b.subarray(at)]);
        break;
      case 4: // interesting integers (sizes, lengths)
        if (at + 4 <= b.length)
          b.writeUInt32BE([0, 0xffffffff, 0x7fffffff, 0x10000, 30_000][Math.floor(random() * 5)]!, at);
        break;
      default: // delete a slice
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + Math.floor(random() * 32))]);
    }
  }
  return b;
}
