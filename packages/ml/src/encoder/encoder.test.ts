import { existsSync, readFileSync, realpathSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preprocessImage } from "../preprocess/decode-image.ts";
import { load, PIXELS_PER_IMAGE, type Encoder, type EncoderLogger } from "./index.ts";
import { maxAbsDiff } from "./types.ts";

// Memory soak length: the reliability plan asks for 500; the tfjs path costs ~0.5 s/image on
// wasm (2 cores), so the default here is 20. CAPFLOW_SOAK_N=500 for the full soak.
const SOAK_N = Number(process.env.CAPFLOW_SOAK_N ?? 20);

const here = path.dirname(fileURLToPath(import.meta.url));

/** A few real images: noto emoji SVGs (from the ingest package's data dependency) rendered to PNG, else synthetic ones. */
async function sampleImages(n: number): Promise<{ name: string; png: Buffer }[]> {
  const out: { name: string; png: Buffer }[] = [];
  const iconsFile = path.join(here, "../../../ingest/node_modules/@iconify-json/noto/icons.json");
  if (existsSync(iconsFile)) {
    const set = JSON.parse(readFileSync(realpathSync(iconsFile), "utf8")) as {
      width?: number;
      height?: number;
      icons: Record<string, { body: string; width?: number; height?: number }>;
    };
    for (const name of ["red-apple", "dog-face", "rocket", "sun-with-face", "house", "grinning-face"]) {
      const icon = set.icons[name];
      if (!icon || out.length >= n) continue;
      const w = icon.width ?? set.width ?? 16;
      const h = icon.height ?? set.height ?? 16;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="512" height="512" viewBox="0 0 ${w} ${h}">${icon.body}</svg>`;
      out.push({ name: `noto:${name}`, png: await sharp(Buffer.from(svg)).png().toBuffer() });
    }
  }
  for (let i = out.length; i < n; i++) {
    const png = await sharp({
      create: {
        width: 320,
        height: 240,
        channels: 3,
        background: { r: (i * 83) % 256, g: (i * 151) % 256, b: (i * 47) % 256 },
      },
    })
      .composite([
        {
          input: Buffer.from(
            `<svg width="320" height="240"><circle cx="${80 + i * 30}" cy="120" r="${40 + i * 10}" fill="#${(0x123456 * (i + 1)).toString(16).slice(-6).padStart(6, "0")}"/></svg>`,
          ),
        },
      ])
      .png()
      .toBuffer();
    out.push({ name: `synthetic-${i}`, png });
  }
  return out;
}

function stack(images: Float32Array[]): Float32Array {
  const b = new Float32Array(images.length * PIXELS_PER_IMAGE);
  images.forEach((im, i) => b.set(im, i * PIXELS_PER_IMAGE));
  return b;
}

function expectFeatures(f: Float32Array, n: number): void {
  expect(f).toBeInstanceOf(Float32Array);
  expect(f.length).toBe(n * 2048);
  for (const v of f) if (!Number.isFinite(v)) throw new Error(`non-finite feature ${v}`);
}

describe("InceptionV3 encoder (nsfwjs weights)", () => {
  let cacheDir: string;
  let onnx: Encoder;
  let tfjs: Encoder;
  const messages: string[] = [];
  const logger: EncoderLogger = {
    info: (msg, f) => {
      messages.push(msg);
      console.log(msg, JSON.stringify(f));
    },
    warn: (msg, f) => {
      messages.push(msg);
      console.warn(msg, JSON.stringify(f));
    },
  };
  let batch: Float32Array;
  let names: string[];

  beforeAll(async () => {
    cacheDir = await mkdtemp(path.join(tmpdir(), "capflow-encoder-test-"));
    onnx = await load({ runtime: "onnx", cacheDir, logger }); // converts, checks vs tfjs, caches
    tfjs = await load({ runtime: "tfjs" });
    const imgs = await sampleImages(4);
    names = imgs.map((i) => i.name);
    const pixels: Float32Array[] = [];
    for (const im of imgs) {
      const r = await preprocessImage(im.png);
      if (!r.ok) throw new Error(`${im.name}: ${r.reason} ${r.message}`);
      pixels.push(r.pixels);
    }
    batch = stack(pixels);
  });

  afterAll(async () => {
    await onnx?.dispose();
    await tfjs?.dispose();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it("identifies itself", () => {
    expect(onnx.id).toMatch(/^inceptionv3-nsfwjs-[0-9a-f]{12}$/);
    expect(tfjs.id).toBe(onnx.id);
    expect(onnx.dim).toBe(2048);
    expect(onnx.runtime).toBe("onnx");
    expect(onnx.backend).toBe("onnxruntime-node:cpu");
    expect(tfjs.runtime).toBe("tfjs");
    expect(tfjs.backend).toBe("tfjs:wasm");
    expect(messages).toContain("onnx conversion checked against tfjs");
    expect(existsSync(path.join(cacheDir, `${onnx.id}.onnx`))).toBe(true);
  });

  it("ONNX agrees with tfjs on real images", async () => {
    const n = names.length;
    const a = await onnx.encode(batch, n);
    const b = await tfjs.encode(batch, n);
    expectFeatures(a, n);
    expectFeatures(b, n);
    const diff = maxAbsDiff(a, b);
    let maxAbs = 0;
    for (const v of b) maxAbs = Math.max(maxAbs, Math.abs(v));
    console.log(
      `ONNX vs tfjs on ${names.join(", ")}: max abs diff ${diff.toExponential(3)} (max |feature| ${maxAbs.toFixed(3)})`,
    );
    expect(diff).toBeLessThan(1e-3);
    // distinct images give distinct features
    expect(maxAbsDiff(a.subarray(0, 2048), a.subarray(2048, 4096))).toBeGreaterThan(1e-2);
  });

  it("batching does not change a row", async () => {
    const all = await onnx.encode(batch, names.length);
    const one = await onnx.encode(batch.subarray(PIXELS_PER_IMAGE, 2 * PIXELS_PER_IMAGE), 1);
    expectFeatures(one, 1);
    expect(maxAbsDiff(one, all.subarray(2048, 4096))).toBeLessThan(1e-4);
  });

  it("reuses the cached .onnx without converting again", async () => {
    messages.length = 0;
    const again = await load({ runtime: "onnx", cacheDir, logger, threads: 1 });
    try {
      expect(messages).not.toContain("onnx conversion checked against tfjs");
      expect(
        maxAbsDiff(await again.encode(batch, names.length), await onnx.encode(batch, names.length)),
      ).toBeLessThan(1e-4);
    } finally {
      await again.dispose();
    }
  });

  it("rejects bad configs and bad batches", async () => {
    await expect(load({ runtime: "pytorch" as never })).rejects.toThrow(/onnx, tfjs/);
    await expect(load({ runtime: "onnx", threads: 0 })).rejects.toThrow(/positive integer/);
    await expect(load({ runtime: "onnx", executionProviders: ["rocm"] })).rejects.toThrow(
      /cpu, cuda, tensorrt/,
    );
    await expect(onnx.encode(new Float32Array(10), 1)).rejects.toThrow(/299/);
    await expect(tfjs.encode(batch, names.length + 1)).rejects.toThrow(/299/);
  });

  it(`tfjs: tensor count stays flat over ${SOAK_N} encodes`, async () => {
    const one = batch.subarray(0, PIXELS_PER_IMAGE);
    await tfjs.encode(one, 1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < SOAK_N; i++) expectFeatures(await tfjs.encode(one, 1), 1);
    expect(tf.memory().numTensors).toBe(before);
  });
});
