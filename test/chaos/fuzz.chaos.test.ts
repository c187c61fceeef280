import { describe, expect, it } from "vitest";
import { DECODE_FAILURE_REASONS } from "@capflow/common";
import { runDecodeChild } from "../support/fault/decode-runner.ts";
import { CHAOS_SCALE, chaosSeed, chaosSize, replay } from "../support/fault/chaos-config.ts";

const CASES = chaosSize("CAPFLOW_FUZZ_CASES", { full: 10_000, ci: 1_000 });
// A case is a pure function of (seed, index): a crash at index i replays with the same seed.
const SEED = chaosSeed(7);

// docs/reliability.md test 10, long version: mutated PNG/JPEG/GIF/WebP through preprocessImage in a child.
describe("byte fuzzing of the decode path", () => {
  it(`survives ${CASES} mutated images without a crash or a hang`, async () => {
    const run = await runDecodeChild(["fuzz", String(SEED), "0", String(CASES)], {
      hangMs: 60_000,
      restartFrom: (from) => (from < CASES ? ["fuzz", String(SEED), String(from), String(CASES)] : undefined),
    });
    const reasons: Record<string, number> = {};
    for (const l of run.lines) reasons[l.ok ? "ok" : l.reason!] = (reasons[l.ok ? "ok" : l.reason!] ?? 0) + 1;
    console.info(
      JSON.stringify({
        seed: SEED,
        scale: CHAOS_SCALE,
        cases: run.lines.length,
        crashes: run.crashes,
        reasons,
        peakRssMb: Math.round(run.peakRss / 2 ** 20),
      }),
    );
    const seeded = replay(SEED);
    expect(run.crashes, seeded).toEqual([]);
    expect(run.lines, seeded).toHaveLength(CASES);
    for (const l of run.lines) if (!l.ok) expect(DECODE_FAILURE_REASONS, seeded).toContain(l.reason);
    for (const l of run.lines) if (l.ok) expect(l.valid, seeded).toBe(true);
  });
});
