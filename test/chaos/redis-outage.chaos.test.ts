import { describe, expect, it } from "vitest";
import { redisOutage } from "../support/fault/outage.ts";
import { chaosSize } from "../support/fault/chaos-config.ts";

// bullmq 6.0–6.3.2 left workers idle for good after an outage longer than drainDelay (5 s) + 1 s:
// 10 s in CI is past that too. No randomness here: nothing to seed.
const SECONDS = chaosSize("CAPFLOW_CHAOS_OUTAGE_SECONDS", { full: 20, ci: 10 });

describe(`a ${SECONDS} s Redis outage (bullmq #4585)`, () => {
  it("resumes busy and idle feature workers by themselves; jobs enqueued after complete", async () => {
    const { recoveryMs, outages } = await redisOutage(SECONDS);
    expect(outages).toBe(1);
    console.info(`redis outage ${SECONDS} s: all work done ${recoveryMs} ms after Redis came back`);
  });
});
