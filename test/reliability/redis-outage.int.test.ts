import { describe, expect, it } from "vitest";
import { redisOutage } from "../support/fault/outage.ts";

describe("a short Redis outage", () => {
  it("resumes busy and idle feature workers by themselves after 5 s without Redis", async () => {
    const { outages } = await redisOutage(5);
    expect(outages).toBe(1);
  });
});
