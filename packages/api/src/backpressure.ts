import type { TypedQueue } from "@capflow/common";

/**
 * Admission control for online captions (docs/reliability.md test 15): past `maxDepth` online captions
 * ahead, new requests are refused with 429 and Retry-After instead of growing the queue (and Redis
 * memory, and every accepted request's wait) without bound.
 *
 * The depth is the online backlog: the `captions` jobs waiting AND those workers hold active. Counting
 * only waiting jobs let a caption worker (concurrency 64) take 64 jobs off the queue that then sat
 * behind its encoder, so accepted requests waited far longer than the depth promised. Bulk shards
 * have their own queue (`caption-bulk`) and never count: a bulk job over a large dataset must not
 * lock single requests out for its whole run. Size the depth as capacity × the wait you accept
 * (docs/operations.md).
 *
 * The count is cached for `ttlMs` and shared by concurrent callers, so a flood costs Redis one count
 * per 250 ms, not one per request; the price is an overshoot of at most (request rate × ttl) jobs.
 */
export class QueueDepthGate {
  private cached?: { at: number; depth: Promise<number> };

  constructor(
    private readonly queue: TypedQueue<"captions">,
    readonly maxDepth: number,
    private readonly ttlMs = 250,
  ) {}

  async depth(): Promise<number> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= this.ttlMs) {
      const depth = this.count();
      const entry = { at: now, depth };
      // A failed count is not cached: the next request asks Redis again.
      depth.catch(() => {
        if (this.cached === entry) this.cached = undefined;
      });
      this.cached = entry;
    }
    return this.cached.depth;
  }

  private async count(): Promise<number> {
    const c = await this.queue.getJobCounts("waiting", "prioritized", "active");
    return (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0);
  }

  /** undefined when admitted, else the seconds to wait before retrying. */
  async admit(): Promise<number | undefined> {
    const depth = await this.depth();
    if (depth < this.maxDepth) return undefined;
    // The further over the limit, the longer to back off: one second per queue-full of backlog, from 1
    // to 30 s, so clients spread their retries instead of returning together.
    return Math.min(30, Math.max(1, Math.ceil(depth / this.maxDepth)));
  }
}
