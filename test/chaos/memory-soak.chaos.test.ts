import { describe, expect, it } from "vitest";
import { analyseSoak, formatSamples, type MemorySample, type SoakFigures } from "../support/soak/memory.ts";
import { runCaptionSoak, runFeatureSoak } from "../support/soak/runs.ts";

import { CHAOS_SCALE, chaosSize } from "../support/fault/chaos-config.ts";

// No randomness to seed. Two sizes of one soak (docs/reliability.md test 14):
// - full (`pnpm test:chaos`): thousands of iterations, enough to fit slopes through allocator noise;
// - ci (`scripts/test.sh`): a few hundred, all warm-up for the native heap, so it asserts what is exact
//   (tensors) and catches a runaway: leaking one 299×299×3 float input per inference would add > 200 MB.
//   At 400 images / 1,000 jobs the RSS slope from 11 samples read 43 MB per 1,000 (bound 25): the
//   ±15 MB swings of RSS, not a leak, so the CI size asserts no slope.
const FULL = CHAOS_SCALE === "full";
const IMAGES = chaosSize("CAPFLOW_SOAK_IMAGES", { full: 2000, ci: 256 });
const JOBS = chaosSize("CAPFLOW_SOAK_JOBS", { full: 5000, ci: 300 });
const EVERY = chaosSize("CAPFLOW_SOAK_SAMPLE_EVERY", { full: 64, ci: 32 });
const REPUBLISH_EVERY = chaosSize("CAPFLOW_SOAK_REPUBLISH_EVERY", { full: 1000, ci: 150 });
const WAVE = FULL ? 100 : 30;
// Distinct images cycled: fewer at CI size, where each is seen about twice anyway.
const IMAGE_POOL = FULL ? 400 : 120;
const CAPTION_POOL = FULL ? 120 : 60;
// Minutes on 2 quiet cores; the caption soak took over 15 on a shared, loaded machine.
const TIMEOUT = 45 * 60_000;

function report(path: string, samples: MemorySample[], extra: Record<string, unknown>): SoakFigures {
  const f = analyseSoak(samples, FULL ? 0.1 : 0.25);
  console.info(`${path}\n${formatSamples(samples, 40)}`);
  console.info(JSON.stringify({ path, scale: CHAOS_SCALE, ...extra, ...f }));
  return f;
}

describe("memory soak (docs/reliability.md test 14)", () => {
  it(
    `encodes ${IMAGES} images (5% refused) with no tensor, heap or native growth`,
    async () => {
      const run = await runFeatureSoak({ images: IMAGES, every: EVERY, pool: IMAGE_POOL });
      const f = report("features", run.samples, { backend: run.backend, counts: run.counts });
      expect(run.exit, run.tail).toEqual({ code: 0, signal: null });
      expect(run.counts).toMatchObject({ goodRefused: 0, nonFinite: 0 });
      expect(run.counts.encoded! + run.counts.refused!).toBe(IMAGES);
      expectBounded(f);
    },
    TIMEOUT,
  );

  it(
    `answers ${JOBS} caption jobs through the caption worker with no tensor, heap or native growth`,
    async () => {
      const run = await runCaptionSoak({
        jobs: JOBS,
        wave: WAVE,
        republishEvery: REPUBLISH_EVERY,
        pool: CAPTION_POOL,
        onSample: (s) => {
          if (s.i % 1000 === 0) console.info(`captions: ${s.i} jobs, rss ${Math.round(s.rss / 2 ** 20)} MB`);
        },
      });
      const f = report("captions", run.samples, { backend: run.backend, counts: run.counts });
      expect(run.exit, run.tail).toEqual({ code: 0, signal: null });
      expect(run.counts.goodFailed, run.tail).toBe(0);
      expect(run.counts.jobs).toBeGreaterThanOrEqual(JOBS);
      expect(run.counts.reloads).toBeGreaterThanOrEqual(Math.floor((JOBS - 1) / REPUBLISH_EVERY));
      expectBounded(f);
    },
    TIMEOUT,
  );
});

// Bounds (docs/reliability.md, test 14). A leak held by JavaScript (a Buffer, a Float32Array, a job's
// result) shows in the live heap or in external memory after a forced GC: both must stay under
// 1 MB per 1,000 inferences, i.e. < 1 KB per inference (a 2048-float vector is 8 KB). A native leak
// shows only in RSS, which swings by ±15 MB between samples as glibc's arenas and onnxruntime's
// allocator settle: its slope, from the end of warm-up and over the second half, must stay under
// 25 MB per 1,000 (25 KB per inference; leaking one 299×299×3 float input would be 1,070 MB per 1,000).
// At CI size: tensors flat, heap growth < 8 MB, RSS growth after warm-up (25%) < 100 MB, peak < 1.2 GB.
function expectBounded(f: SoakFigures): void {
  expect(f.tensorsAfterWarmup, "tf.memory().numTensors after warm-up").toHaveLength(1);
  expect(f.peakRssMb, "peak RSS (VmHWM), MB").toBeLessThan(1200);
  if (!FULL) {
    expect(f.heapGrowthMb, "live JS heap growth after warm-up, MB").toBeLessThan(8);
    expect(f.rssGrowthMb, "RSS growth after warm-up, MB").toBeLessThan(100);
    return;
  }
  expect(f.heapSlopeMbPer1000, "live JS heap growth, MB per 1,000").toBeLessThan(1);
  expect(f.externalSlopeMbPer1000, "Buffer/ArrayBuffer growth, MB per 1,000").toBeLessThan(1);
  expect(f.rssSlopeMbPer1000, "RSS growth after warm-up, MB per 1,000").toBeLessThan(25);
  expect(f.rssTailSlopeMbPer1000, "RSS growth over the second half, MB per 1,000").toBeLessThan(25);
  expect(f.rssGrowthMb, "RSS growth after warm-up, MB").toBeLessThan(96);
}
