/**
 * Shared pieces of the benchmarks (not a benchmark itself: `_` files are not listed by `pnpm bench`):
 * realistic drawn images, a private redis-server and s3rver on loopback, load-average notes.
 */
import fs from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import pino from "pino";
import { startEmbeddedRedis, freePort, type EmbeddedRedis } from "@capflow/common";
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore
import S3rver from "s3rver";

export const silent = pino({ level: "silent" });
export const cores = availableParallelism();

/** `load 1.23/0.98/0.75` (1, 5, 15 min) on `cores` cores: printed with every figure. */
export function load(): string {
  const [a, b, c] = loadavg();
  return `load ${a!.toFixed(2)}/${b!.toFixed(2)}/${c!.toFixed(2)} on ${cores} cores`;
}

export async function tempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(tmpdir(), `capflow-bench-${label}-`));
}

/** A small deterministic PRNG. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/**
 * A photo-like image of `w`×`h`: smooth gradients, shapes and sensor-like noise, so that JPEG and
 * PNG sizes are those of real photos (tens to hundreds of KB), not those of flat test drawings.
 */
export async function drawPhoto(seed: number, w: number, h: number, format: "jpeg" | "png"): Promise<Buffer> {
  const rand = rng(seed * 7919 + 17);
  const raw = Buffer.alloc(w * h * 3);
  const base = [rand() * 255, rand() * 255, rand() * 255];
  const grad = [rand() * 2 - 1, rand() * 2 - 1, rand() * 2 - 1];
  const circles = Array.from({ length: 6 }, () => ({
    x: rand() * w,
    y: rand() * h,
    r: 20 + rand() * Math.min(w, h) * 0.3,
    c: [rand() * 255, rand() * 255, rand() * 255],
  }));
  const fx = 0.01 + rand() * 0.05;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      let inside: (typeof circles)[number] | undefined;
      for (const ci of circles) if ((x - ci.x) ** 2 + (y - ci.y) ** 2 < ci.r * ci.r) inside = ci;
      for (let k = 0; k < 3; k++) {
        let v = base[k]! + grad[k]! * (x + y) * 0.2 + 30 * Math.sin(x * fx + y * fx * 0.7 + k);
        if (inside) v = v * 0.3 + inside.c[k]! * 0.7;
        raw[i + k] = Math.max(0, Math.min(255, v + (rand() - 0.5) * 24));
      }
    }
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  return format === "jpeg" ? img.jpeg({ quality: 85 }).toBuffer() : img.png().toBuffer();
}

export interface DrawnImage {
  name: string;
  bytes: Buffer;
  width: number;
  height: number;
}

/** `n` varied images of 300–640 px a side: two JPEGs for each PNG. */
export async function drawPhotos(n: number, seed = 1): Promise<DrawnImage[]> {
  const rand = rng(seed);
  const out: DrawnImage[] = [];
  for (let i = 0; i < n; i++) {
    const width = 300 + Math.floor(rand() * 341);
    const height = 300 + Math.floor(rand() * 341);
    const format = i % 3 === 2 ? "png" : "jpeg";
    const bytes = await drawPhoto(seed * 100_003 + i, width, height, format);
    out.push({
      name: `img/${String(i).padStart(5, "0")}.${format === "png" ? "png" : "jpg"}`,
      bytes,
      width,
      height,
    });
  }
  return out;
}

export function describeImages(images: DrawnImage[]): string {
  const bytes = images.reduce((s, i) => s + i.bytes.length, 0);
  const px = images.reduce((s, i) => s + i.width * i.height, 0);
  const png = images.filter((i) => i.name.endsWith(".png")).length;
  return `${images.length} drawn images (${images.length - png} JPEG q85, ${png} PNG), 300–640 px a side, mean ${(px / images.length / 1e3).toFixed(0)} kpx, mean ${(bytes / images.length / 1024).toFixed(0)} KiB`;
}

/** Writes the images as a jsonl-folder dataset (two captions each); returns the folder. */
export async function writeDataset(dir: string, images: DrawnImage[]): Promise<string> {
  await fs.mkdir(path.join(dir, "img"), { recursive: true });
  const lines: string[] = [];
  for (const [i, img] of images.entries()) {
    await fs.writeFile(path.join(dir, img.name), img.bytes);
    lines.push(
      JSON.stringify({ image: img.name, captions: [`a photo number ${i}`, "shapes over a gradient"] }),
    );
  }
  await fs.writeFile(path.join(dir, "captions.jsonl"), `${lines.join("\n")}\n`);
  return dir;
}

/** Cleanup actions run in reverse order, errors reported but not thrown. */
export class Cleanup {
  private readonly steps: Array<[string, () => Promise<unknown>]> = [];
  add(name: string, fn: () => Promise<unknown>): void {
    this.steps.push([name, fn]);
  }
  async run(): Promise<void> {
    for (const [name, fn] of this.steps.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup ${name}: ${(err as Error).message}`);
      }
    }
    this.steps.length = 0;
  }
}

/** A private redis-server (no persistence) in a temp dir, stopped and removed by `cleanup`. */
export async function startRedis(cleanup: Cleanup): Promise<EmbeddedRedis> {
  const dir = await tempDir("redis");
  cleanup.add("redis dir", () => fs.rm(dir, { recursive: true, force: true }));
  const redis = await startEmbeddedRedis({ dataDir: dir, persistence: false });
  cleanup.add("redis", () => redis.stop());
  return redis;
}

/** s3rver on loopback with one bucket. */
export async function startS3(cleanup: Cleanup): Promise<{ endpoint: string; bucket: string }> {
  const dir = await tempDir("s3");
  cleanup.add("s3 dir", () => fs.rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const bucket = "capflow-bench";
  const s3 = new S3rver({
    port,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
  });
  await s3.run();
  cleanup.add("s3rver", () => s3.close());
  return { endpoint: `http://127.0.0.1:${port}`, bucket };
}

/** Runs `main` with cleanup on success, failure and Ctrl-C. */
export function runBench(main: (cleanup: Cleanup) => Promise<void>): void {
  const cleanup = new Cleanup();
  process.once("SIGINT", () => void cleanup.run().finally(() => process.exit(130)));
  main(cleanup)
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(() => cleanup.run());
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
