/**
 * One per worker process. Shards run their batches side by side (`shared`); a shard that isolates
 * suspects after a death runs them with nothing else in flight in the process (`exclusive`), so that
 * the next death, if it comes, is attributable to that one image. Without it, with
 * `CAPFLOW_FEATURE_CONCURRENCY` > 1, a poison image in one shard would kill the process while another
 * shard's suspect ran "alone", and that good image would collect strikes (./crash-isolation.ts).
 *
 * Writer-preferring: once an exclusive section waits, new shared sections wait behind it, so a steady
 * stream of shards cannot starve it; it waits for the running batch phases to end (one shard each
 * at most). Sections never nest, so nothing deadlocks.
 */
export class IsolationGate {
  private shared = 0;
  private exclusive = false;
  private exclusiveWaiting = 0;
  private wakers: Array<() => void> = [];

  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive || this.exclusiveWaiting > 0) await this.wait();
    this.shared++;
    try {
      return await fn();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusiveWaiting++;
    try {
      while (this.exclusive || this.shared > 0) await this.wait();
    } finally {
      this.exclusiveWaiting--;
    }
    this.exclusive = true;
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  /** For tests and logs. */
  get state(): { shared: number; exclusive: boolean; exclusiveWaiting: number } {
    return { shared: this.shared, exclusive: this.exclusive, exclusiveWaiting: this.exclusiveWaiting };
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }
}
