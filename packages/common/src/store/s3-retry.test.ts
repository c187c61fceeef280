import { describe, expect, it } from "vitest";
import { S3RetryStrategy } from "./s3-retry.ts";

const policy = { maxAttempts: 5, baseMs: 100, capMs: 5_000, throttlingBaseMs: 1_000 };

describe("S3RetryStrategy", () => {
  it("retries transient and throttling errors up to maxAttempts, then gives the error back", async () => {
    const s = new S3RetryStrategy(policy, () => 0.5);
    let token = await s.acquireInitialRetryToken();
    for (let retry = 1; retry < policy.maxAttempts; retry++) {
      token = await s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT" });
      expect(token.getRetryCount()).toBe(retry);
    }
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT" })).rejects.toThrow(/attempt 5/);
    expect(
      (
        await s.refreshRetryTokenForRetry(await s.acquireInitialRetryToken(), { errorType: "THROTTLING" })
      ).getRetryCount(),
    ).toBe(1);
  });

  it("never retries client errors or unclassified server errors", async () => {
    const s = new S3RetryStrategy(policy);
    const first = await s.acquireInitialRetryToken();
    await expect(s.refreshRetryTokenForRetry(first, { errorType: "CLIENT_ERROR" })).rejects.toThrow();
    await expect(s.refreshRetryTokenForRetry(first, { errorType: "SERVER_ERROR" })).rejects.toThrow();
  });

  it("keeps retrying through a long run of faults: no budget shared across requests", async () => {
    // The SDK's standard strategy stops retrying once ~35 retries went unrefunded; this one never does.
    const s = new S3RetryStrategy(policy, () => 0);
    for (let request = 0; request < 1_000; request++) {
      let token = await s.acquireInitialRetryToken();
      for (let retry = 1; retry < policy.maxAttempts; retry++)
        token = await s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT" });
      await expect(s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT" })).rejects.toThrow();
    }
    const last = await s.refreshRetryTokenForRetry(await s.acquireInitialRetryToken(), {
      errorType: "TRANSIENT",
    });
    expect(last.getRetryCount()).toBe(1);
  });

  it("backs off exponentially with full jitter, capped, slower for throttling, honouring Retry-After", () => {
    const top = new S3RetryStrategy(policy, () => 0.999999);
    expect([1, 2, 3, 4].map((n) => top.delayMs(n, { errorType: "TRANSIENT" }))).toEqual([99, 199, 399, 799]);
    expect(top.delayMs(10, { errorType: "TRANSIENT" })).toBe(4_999);
    expect(top.delayMs(1, { errorType: "THROTTLING" })).toBe(999);
    const low = new S3RetryStrategy(policy, () => 0);
    expect(low.delayMs(3, { errorType: "TRANSIENT" })).toBe(0);
    const hint = new Date(Date.now() + 60_000);
    expect(low.delayMs(1, { errorType: "THROTTLING", retryAfterHint: hint })).toBe(5_000);
  });
});
