// Memory samples of a soak child and what they say (docs/reliability.md test 14). The child takes the
// samples itself (process.memoryUsage() + /proc/self/status + tf.memory()) at quiet points between
// iterations; the parent analyses them. Pure functions except takeSample/emit.
import { readFileSync } from "node:fs";

export interface MemorySample {
  /** Iterations done when the sample was taken (images encoded, caption jobs finished). */
  i: number;
  /** Resident set (VmRSS) and its high-water mark so far (VmHWM), bytes. */
  rss: number;
  hwm: number;
  /** V8 heap in use after a forced GC, and memory outside it (Buffers, ArrayBuffers, wasm heaps). */
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** tfjs's live tensors and their bytes (0 where the process holds no tfjs tensors). */
  numTensors: number;
  tensorBytes: number;
}

interface TfMemory {
  memory(): { numTensors: number; numBytes: number };
}

/** VmRSS and VmHWM of a process, in bytes, from /proc (undefined off Linux). */
export function procMemory(pid: number | "self" = "self"): { rss: number; hwm: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  const rss = kb("VmRSS") * 1024;
  const hwm = kb("VmHWM") * 1024;
  return Number.isFinite(rss) && Number.isFinite(hwm) ? { rss, hwm } : undefined;
}

/**
 * One sample of this process. Runs the GC first (children start with --expose-gc) so heapUsed is
 * the live heap, not whatever garbage the last iterations left: a growing live heap is a leak,
 * growing garbage is not.
 */
export function takeSample(i: number, tf?: TfMemory): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const proc = procMemory();
  const t = tf?.memory();
  return {
    i,
    rss: proc?.rss ?? m.rss,
    hwm: proc?.hwm ?? m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    numTensors: t?.numTensors ?? 0,
    tensorBytes: t?.numBytes ?? 0,
  };
}

/** The line protocol between a soak child and its parent: one JSON object per stdout line, tagged `soak`. */
export type SoakMessage =
  | ({ soak: "sample" } & MemorySample)
  | { soak: "ready"; backend?: string; pid: number }
  | { soak: "done"; counts: Record<string, number> };

export function emit(msg: SoakMessage): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

const MB = 2 ** 20;

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface SoakFigures {
  iterations: number;
  samples: number;
  /** Iteration count at the end of warm-up (first sample at or after `warmup` × iterations). */
  warmupEnd: number;
  /** Distinct numTensors values after warm-up: exactly one when nothing leaks. */
  tensorsAfterWarmup: number[];
  peakRssMb: number;
  rssAtWarmupEndMb: number;
  rssAtEndMb: number;
  /** Linear-fit slopes after warm-up, MB per 1,000 iterations. */
  rssSlopeMbPer1000: number;
  /**
   * The RSS slope over the second half of the run only: glibc's malloc arenas and onnxruntime's
   * allocator keep settling well past the first 10% (growth that slows down and stops), a leak
   * keeps its pace.
   */
  rssTailSlopeMbPer1000: number;
  heapSlopeMbPer1000: number;
  externalSlopeMbPer1000: number;
  /** End minus end-of-warm-up, MB. */
  rssGrowthMb: number;
  heapGrowthMb: number;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The figures test 14 asserts on and reports. `warmup` is the fraction of iterations left out. */
export function analyseSoak(samples: MemorySample[], warmup = 0.1): SoakFigures {
  if (samples.length < 3) throw new Error(`a soak needs at least 3 samples, got ${samples.length}`);
  const iterations = samples[samples.length - 1]!.i;
  const from = samples.findIndex((s) => s.i >= warmup * iterations);
  const steady = samples.slice(from);
  const first = steady[0]!;
  const last = steady[steady.length - 1]!;
  const tail = samples.filter((s) => s.i >= iterations / 2);
  const fit = (pick: (s: MemorySample) => number, over = steady) =>
    round((slope(over.map((s) => [s.i, pick(s)])) * 1000) / MB, 2);
  return {
    iterations,
    samples: samples.length,
    warmupEnd: first.i,
    tensorsAfterWarmup: [...new Set(steady.map((s) => s.numTensors))],
    peakRssMb: round(Math.max(...samples.map((s) => Math.max(s.hwm, s.rss))) / MB),
    rssAtWarmupEndMb: round(first.rss / MB),
    rssAtEndMb: round(last.rss / MB),
    rssSlopeMbPer1000: fit((s) => s.rss),
    rssTailSlopeMbPer1000: fit((s) => s.rss, tail),
    heapSlopeMbPer1000: fit((s) => s.heapUsed),
    externalSlopeMbPer1000: fit((s) => s.external),
    rssGrowthMb: round((last.rss - first.rss) / MB),
    heapGrowthMb: round((last.heapUsed - first.heapUsed) / MB),
  };
}

/** A compact table of the samples (at most `rows` rows, evenly spaced, first and last kept). */
export function formatSamples(samples: MemorySample[], rows = 24): string {
  const step = Math.max(1, Math.ceil(samples.length / rows));
  const picked = samples.filter((_, k) => k % step === 0 || k === samples.length - 1);
  const mb = (b: number) => (b / MB).toFixed(1).padStart(8);
  const head = `${"iter".padStart(7)} ${"rss MB".padStart(8)} ${"hwm MB".padStart(8)} ${"heap MB".padStart(8)} ${"ext MB".padStart(8)} ${"ab MB".padStart(8)} ${"tensors".padStart(8)}`;
  const lines = picked.map(
    (s) =>
      `${String(s.i).padStart(7)} ${mb(s.rss)} ${mb(s.hwm)} ${mb(s.heapUsed)} ${mb(s.external)} ${mb(s.arrayBuffers)} ${String(s.numTensors).padStart(8)}`,
  );
  return [head, ...lines].join("\n");
}
