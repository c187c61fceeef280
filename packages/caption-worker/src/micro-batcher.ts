/**
 * Collects items that arrive close together and runs them as one batch: a batch starts when
 * `maxBatch` items wait or the oldest has waited `maxWaitMs`. On the ONNX decoder a caption costs
 * 0.30 ms of CPU in a batch of 64 against 2.4 ms alone (`pnpm bench decode`, docs/benchmarks.md); on
 * tfjs-wasm, compute-bound on one thread, batching gains little (1.22× at best).
 */
export interface MicroBatcherOptions<I, O> {
  maxBatch: number;
  maxWaitMs: number;
  run: (items: I[]) => Promise<O[]> | O[];
  onBatch?: (size: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = Promise.resolve();

  constructor(private readonly opts: MicroBatcherOptions<I, O>) {
    if (opts.maxBatch < 1) throw new RangeError("maxBatch must be at least 1");
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.opts.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.maxWaitMs);
    });
  }

  /** Batches run one after another: tfjs and onnxruntime-node both run a step on the JS thread. */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    if (batch.length === 0) return;
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), this.opts.maxWaitMs);
    this.running = this.running.then(async () => {
      this.opts.onBatch?.(batch.length);
      try {
        const out = await this.opts.run(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(out[i]!));
      } catch (err) {
        batch.forEach((p) => p.reject(err));
      }
    });
  }

  /** Waits for queued and running batches. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) this.flush();
    await this.running;
  }
}
