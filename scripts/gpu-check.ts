import { availableParallelism } from "node:os";
import sharp from "sharp";
import { loadEncoder, preprocessImage, PIXELS_PER_IMAGE, type Encoder } from "@capflow/ml";

/**
 * The encoder on a GPU execution provider and on the CPU over the same images: max abs difference of
 * the 2048-d vectors, and img/s of each. Exits 2 when the GPU provider did not load (the encoder
 * fell back to cpu), 1 when the vectors disagree beyond the tolerance.
 * Usage (scripts/gpu-check.sh): tsx scripts/gpu-check.ts [provider=cuda] [images=64] [batch=16]
 */
const provider = process.argv[2] ?? "cuda";
const n = Number(process.argv[3] ?? 64);
const batch = Number(process.argv[4] ?? 16);
// fp32 on both sides; cuDNN's convolution algorithms reorder sums (TF32 is off in ORT by default).
const TOLERANCE = 1e-3;

async function drawn(seed: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120">
    <rect width="100%" height="100%" fill="hsl(${(seed * 47) % 360},70%,80%)"/>
    <circle cx="${20 + ((seed * 13) % 90)}" cy="${30 + ((seed * 7) % 60)}" r="${10 + (seed % 30)}" fill="hsl(${(seed * 91) % 360},80%,40%)"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

async function run(
  encoder: Encoder,
  pixels: Float32Array,
): Promise<{ vectors: Float32Array; imgPerS: number }> {
  const out = new Float32Array(n * encoder.dim);
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    const v = await encoder.encode(pixels.subarray(i * PIXELS_PER_IMAGE, (i + k) * PIXELS_PER_IMAGE), k);
    out.set(v, i * encoder.dim);
  }
  return { vectors: out, imgPerS: n / ((performance.now() - t0) / 1000) };
}

const pixels = new Float32Array(n * PIXELS_PER_IMAGE);
for (let i = 0; i < n; i++) {
  const r = await preprocessImage(await drawn(i));
  if (!r.ok) throw new Error(`image ${i}: ${r.reason}`);
  pixels.set(r.pixels, i * PIXELS_PER_IMAGE);
}

const gpu = await loadEncoder({ runtime: "onnx", executionProviders: [provider, "cpu"] });
console.log(`gpu encoder: ${gpu.backend}`);
if (!gpu.backend.startsWith(`onnxruntime-node:${provider}`)) {
  console.error(`the ${provider} execution provider did not load (the encoder runs on ${gpu.backend})`);
  await gpu.dispose();
  process.exit(2);
}
const cpu = await loadEncoder({
  runtime: "onnx",
  executionProviders: ["cpu"],
  threads: availableParallelism(),
});
const g = await run(gpu, pixels);
const c = await run(cpu, pixels);
let maxAbs = 0;
for (let i = 0; i < g.vectors.length; i++) maxAbs = Math.max(maxAbs, Math.abs(g.vectors[i]! - c.vectors[i]!));
const result = {
  provider,
  images: n,
  batch,
  gpuBackend: gpu.backend,
  gpuImgPerS: Number(g.imgPerS.toFixed(1)),
  cpuImgPerS: Number(c.imgPerS.toFixed(1)),
  cpuThreads: availableParallelism(),
  speedup: Number((g.imgPerS / c.imgPerS).toFixed(2)),
  maxAbsDiff: maxAbs,
  tolerance: TOLERANCE,
};
console.log(JSON.stringify(result));
await gpu.dispose();
await cpu.dispose();
process.exit(maxAbs <= TOLERANCE ? 0 : 1);
