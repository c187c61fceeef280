import type { S3ClientConfig } from "@aws-sdk/client-s3";

// The SDK's own retry types, taken from the client's config so that no @smithy package is a dependency.
type RetryStrategyV2 = Extract<NonNullable<S3ClientConfig["retryStrategy"]>, { recordSuccess: unknown }>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2["acquireInitialRetryToken"]>>;
type RetryErrorInfo = Parameters<RetryStrategyV2["refreshRetryTokenForRetry"]>[1];

export interface S3RetryPolicy {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** Backoff before retry n (1-based) is uniform in [0, min(capMs, baseMs · 2^(n-1))] ("full jitter"). */
  baseMs: number;
  capMs: number;
  /** Base for throttling answers (429, SlowDown): the server asked for less load. */
  throttlingBaseMs: number;
}

export const DEFAULT_S3_RETRY: S3RetryPolicy = {
  maxAttempts: 8,
  baseMs: 100,
  capMs: 5_000,
  throttlingBaseMs: 1_000,
};

class Token implements RetryToken {
  constructor(
    private readonly count: number,
    private readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delayMs;
  }
}

/**
 * Retries every request the SDK classifies as retryable (timeouts, resets, refused connections, 500/
 * 502/503/504, throttling) up to `maxAttempts` times with jittered exponential backoff, and nothing else.
 *
 * Why not the SDK's standard strategy: it shares one retry budget across the client (500 tokens, 14 per
 * retry in @smithy/core 3.41, refunded only by the retry that succeeds, +1 per first-try success). Under a
 * sustained fault rate of about one request in four the budget drains (measured through the fault proxy
 * of test/chaos/store-faults: 500 → 172 tokens over 200 puts with 503s and resets only; with stalls
 * added, 8 of 200 puts failed, 6 of them thrown at their first or third attempt because the budget was
 * empty) and from then on a faulted request is not retried at all. Its reads at rest failed the same
 * way (a HEAD answered 503 was thrown as `UnknownError` at its first attempt). That budget protects a
 * service from a retry storm by many callers; capflow's callers are a few workers with a few requests
 * in flight each, so retries are bounded per request instead, spread by the backoff, and a job whose
 * store stays down fails and is retried by its queue.
 *
 * Why 8 attempts, not 5: a request that failed goes out again on a fresh connection (a reset or timed-
 * out socket is destroyed, a 503 says `Connection: close`), and through that proxy a fresh connection
 * fails about half the time (its connection faults on top of the request faults). With 5 attempts 2 of
 * 200 puts failed at every attempt (1%); 8 bring that to ~0.1% and cost at most ~11 s of backoff.
 */
export class S3RetryStrategy implements RetryStrategyV2 {
  constructor(
    private readonly policy: S3RetryPolicy = DEFAULT_S3_RETRY,
    private readonly random: () => number = Math.random,
  ) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(new Token(0, 0));
  }

  refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const retry = token.getRetryCount() + 1;
    const retryable = info.errorType === "TRANSIENT" || info.errorType === "THROTTLING";
    // Rejecting makes the SDK throw the request's last error, with $metadata.attempts set.
    if (!retryable || retry >= this.policy.maxAttempts)
      return Promise.reject(new Error(`no retry (${info.errorType}, attempt ${retry})`));
    return Promise.resolve(new Token(retry, this.delayMs(retry, info)));
  }

  recordSuccess(): void {}

  delayMs(retry: number, info: Pick<RetryErrorInfo, "errorType" | "retryAfterHint">): number {
    const base = info.errorType === "THROTTLING" ? this.policy.throttlingBaseMs : this.policy.baseMs;
    const jittered = Math.floor(this.random() * Math.min(this.policy.capMs, base * 2 ** (retry - 1)));
    // A Retry-After from the server is honoured up to the cap.
    const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
    return Math.max(jittered, Math.min(hinted, this.policy.capMs));
  }
}
