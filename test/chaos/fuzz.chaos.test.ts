import { describe, expect, it } from "vitest";
import { REASON_CODES } from "@capflow/ml";
import { runDecodeChild } from "../support/fault/decode-runner.ts";

const CASES = Number(process.env.CAPFLOW_FUZZ_CASES ?? 10_000);

// docs/reliability.md test 10, long version: mutated PNG/JPEG/GIF/WebP through preprocessImage in a child.
describe("byte fuzzing of the decode path", () => {
  it(`survives ${CASES} mutated images without a crash or a hang`, async () => {
    const run = await runDecodeChild(["fuzz", "7", "0", String(CASES)], {
      hangMs: 60_000,
      restartFrom: (from) => (from < CASES ? ["fuzz", "7", String(from), String(CASES)] : undefined),
    });
    const reasons: Record<string, number> = {};
    for (const l of run.lines) reasons[l.ok ? "ok" : l.reason!] = (reasons[l.ok ? "ok" : l.reason!] ?? 0) + 1;
    console.info(
      JSON.stringify({
        cases: run.lines.length,
        crashes: run.crashes,
        reasons,
        peakRssMb: Math.round(run.peakRss / 2 ** 20),
      }),
    );
    expect(run.crashes).toEqual([]);
    expect(run.lines).toHaveLength(CASES);
    for (const l of run.lines) if (!l.ok) expect(REASON_CODES).toContain(l.reason);
    for (const l of run.lines) if (l.ok) expect(l.valid).toBe(true);
  });
});
