import { describe, expect, it } from "vitest";
import { analyseSoak, formatSamples, type MemorySample, type SoakFigures } from "../support/soak/memory.ts";
import { runCaptionSoak, runFeatureSoak } from "../support/soak/runs.ts";

const IMAGES = Number(process.env.CAPFLOW_SOAK_CI_IMAGES ?? 256);
const JOBS = Number(process.env.CAPFLOW_SOAK_CI_JOBS ?? 300);

function report(path: string, samples: MemorySample[], extra: Record<string, unknown>): SoakFigures {
  const f = analyseSoak(samples, 0.25);
  console.info(`${path}\n${formatSamples(samples)}`);
  console.info(JSON.stringify({ path, ...extra, ...f }));
  return f;
}

// A few hundred iterations are too few to fit a slope through allocator noise (the native heap is
// still settling), so this short variant of test 14 asserts what is exact (tensors) and catches a
// runaway: leaking one 299×299×3 float input per inference would add > 200 MB here.
function expectNoRunaway(f: SoakFigures): void {
  expect(f.tensorsAfterWarmup, "tf.memory().numTensors after warm-up").toHaveLength(1);
  expect(f.heapGrowthMb, "live JS heap growth after warm-up, MB").toBeLessThan(8);
  expect(f.rssGrowthMb, "RSS growth after warm-up, MB").toBeLessThan(100);
  expect(f.peakRssMb, "peak RSS (VmHWM), MB").toBeLessThan(1200);
}

// docs/reliability.md test 14, short: the long soak is test/chaos/memory-soak.chaos.test.ts.
describe("memory soak, short (docs/reliability.md test 14)", () => {
  it(`encodes ${IMAGES} images in a child with tensors flat and no runaway RSS`, async () => {
    const run = await runFeatureSoak({ images: IMAGES, every: 32, pool: 120 });
    const f = report("features", run.samples, { backend: run.backend, counts: run.counts });
    expect(run.exit, run.tail).toEqual({ code: 0, signal: null });
    expect(run.counts).toMatchObject({ goodRefused: 0, nonFinite: 0 });
    expectNoRunaway(f);
  });

  it(`answers ${JOBS} caption jobs in the caption worker with tensors flat and no runaway RSS`, async () => {
    const run = await runCaptionSoak({ jobs: JOBS, wave: 30, republishEvery: 150, pool: 60 });
    const f = report("captions", run.samples, { backend: run.backend, counts: run.counts });
    expect(run.exit, run.tail).toEqual({ code: 0, signal: null });
    expect(run.counts.goodFailed, run.tail).toBe(0);
    expect(run.counts.reloads).toBe(1);
    expectNoRunaway(f);
  });
});
