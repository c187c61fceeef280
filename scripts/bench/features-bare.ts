/**
 * Bare encoder throughput (no queue, no decode): InceptionV3 (nsfwjs weights) on ONNX Runtime vs
 * tfjs on wasm, on synthetic preprocessed 299×299×3 images.
 *
 *   pnpm exec tsx scripts/bench/features-bare.ts [--images 48] [--batch 8] [--threads <cores>] [--no-tfjs]
 *
 * Prints `bare-ort: X img/s` (batches of --batch, intra-op threads = cores), `tfjs-wasm: Y img/s`
 * (same batches) and `one-at-a-time: Z img/s` (ONNX, one image per call as in the tutorial).
 * The first run converts the model into the encoder cache (~10 s, not timed).
 */
import { availableParallelism, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { loadEncoder as load, PIXELS_PER_IMAGE, type Encoder } from "@capflow/ml";

export function syntheticImages(n: number, seed = 7): Float32Array[] {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 0xffffffff;
  };
  const out: Float32Array[] = [];
  for (let k = 0; k < n; k++) {
    const img = new Float32Array(PIXELS_PER_IMAGE);
    const [a, b, c] = [next(), next(), next()];
    for (let i = 0; i < PIXELS_PER_IMAGE; i += 3) {
      const p = i / 3;
      const x = p % 299;
      const y = Math.floor(p / 299);
      img[i] = Math.sin(x * a * 0.1 + y * 0.03) * 0.8;
      img[i + 1] = Math.cos(y * b * 0.1) * 0.8;
      img[i + 2] = (((x + y) * c) % 2) - 1 + next() * 0.1;
    }
    out.push(img);
  }
  return out;
}

/** CPU seconds (user + sys, all threads) per image of the last `throughput` call. */
let lastCpuSecondsPerImage = NaN;
export const cpuSecondsPerImage = (): number => lastCpuSecondsPerImage;

/**
 * Encodes `images` in batches of `batch`; returns images per second (after one warm-up batch).
 * Also records CPU time per image: on a shared, oversubscribed machine wall-clock img/s falls
 * with the load, while cores / (CPU s per image) estimates the uncontended rate.
 */
export async function throughput(enc: Encoder, images: Float32Array[], batch: number): Promise<number> {
  const buf = new Float32Array(batch * PIXELS_PER_IMAGE);
  const runBatch = async (from: number): Promise<void> => {
    const n = Math.min(batch, images.length - from);
    for (let i = 0; i < n; i++) buf.set(images[from + i]!, i * PIXELS_PER_IMAGE);
    await enc.encode(n === batch ? buf : buf.subarray(0, n * PIXELS_PER_IMAGE), n);
  };
  await runBatch(0); // warm-up for this batch shape
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let from = 0; from < images.length; from += batch) await runBatch(from);
  const cpu = process.cpuUsage(c0);
  lastCpuSecondsPerImage = (cpu.user + cpu.system) / 1e6 / images.length;
  return images.length / ((performance.now() - t0) / 1000);
}

/** ONNX Runtime on its own: batches of 8, intra-op threads = number of cores. Returns img/s. */
export async function benchBareOrt(
  images: Float32Array[],
  opts: { batch?: number; threads?: number } = {},
): Promise<number> {
  const enc = await load({ runtime: "onnx", threads: opts.threads ?? availableParallelism() });
  try {
    return await throughput(enc, images, opts.batch ?? 8);
  } finally {
    await enc.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: "string", default: "48" },
      batch: { type: "string", default: "8" },
      threads: { type: "string", default: String(availableParallelism()) },
      "no-tfjs": { type: "boolean", default: false },
    },
  });
  const n = Number(values.images);
  const batch = Number(values.batch);
  const threads = Number(values.threads);
  const images = syntheticImages(n);
  console.log(`${n} synthetic images, batch ${batch}, threads ${threads}, ${availableParallelism()} cores`);

  const cpuNote = (): string =>
    `[${lastCpuSecondsPerImage.toFixed(3)} CPU s/img → ≤${(Math.min(threads, availableParallelism()) / lastCpuSecondsPerImage).toFixed(1)} img/s if uncontended; load avg ${loadavg()[0]!.toFixed(1)}]`;
  console.log(`bare-ort: ${(await benchBareOrt(images, { batch, threads })).toFixed(1)} img/s ${cpuNote()}`);

  if (!values["no-tfjs"]) {
    const tfjs = await load({ runtime: "tfjs" });
    try {
      console.log(
        `tfjs-wasm: ${(await throughput(tfjs, images, batch)).toFixed(2)} img/s (${tfjs.backend}) [${lastCpuSecondsPerImage.toFixed(3)} CPU s/img]`,
      );
    } finally {
      await tfjs.dispose();
    }
  }

  const one = await load({ runtime: "onnx", threads });
  try {
    console.log(
      `one-at-a-time: ${(await throughput(one, images, 1)).toFixed(1)} img/s (onnx, batch 1) ${cpuNote()}`,
    );
  } finally {
    await one.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
