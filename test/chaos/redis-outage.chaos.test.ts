import { describe, expect, it } from "vitest";
import { redisOutage } from "../support/fault/outage.ts";

describe("a 20 s Redis outage (bullmq #4585)", () => {
  it("resumes busy and idle feature workers by themselves; jobs enqueued after complete", async () => {
    const { recoveryMs, outages } = await redisOutage(20);
    expect(outages).toBe(1);
    console.info(`redis outage 20 s: all work done ${recoveryMs} ms after Redis came back`);
  });
});
