import { getJson, NotFoundError, type ObjectStore, type ShardFailure, type ShardList } from "@capflow/common";
import type { Encoder } from "@capflow/common";
import { PIXELS_PER_IMAGE } from "@capflow/common";
import { preprocessImage } from "@capflow/common";

export type { ShardFailure, ShardList };
export type FailureReason = ShardFailure["reason"];

export interface ExtractOptions {
  batchSize: number;
  maxPixels: number;
  signal?: AbortSignal;
  onBatch?: (info: { n: number; seconds: number; done: number; total: number }) => void;
  onImage?: (status: "ok" | FailureReason) => void;
}

type Prepared = { ids: string[]; pixels: Float32Array; failures: ShardFailure[] };

/**
 * Turns one shard into vectors. Decoding the next batch overlaps inference on the current one (sharp
 * works on libuv's pool, ONNX Runtime on its own threads). A bad image fails alone into `failures`;
 * an infrastructure error (store unreachable) throws so the job is retried.
 */
export async function extractShard(
  store: ObjectStore,
  encoder: Encoder,
  shard: ShardList,
  opts: ExtractOptions,
): Promise<{ ids: string[]; vectors: Float32Array; failures: ShardFailure[] }> {
  const batches: ShardList["images"][] = [];
  for (let i = 0; i < shard.images.length; i += opts.batchSize)
    batches.push(shard.images.slice(i, i + opts.batchSize));

  const ids: string[] = [];
  const failures: ShardFailure[] = [];
  const chunks: Float32Array[] = [];
  let done = 0;
  // Decode two batches ahead: with one, the encoder sat idle 10-14% of the time waiting for the next
  // (measured by scripts/bench/features.ts).
  const LOOKAHEAD = 2;
  const pending = batches.slice(0, LOOKAHEAD).map((batch) => prepare(store, batch, opts));
  try {
    for (let b = 0; b < batches.length; b++) {
      opts.signal?.throwIfAborted();
      const current = await pending.shift()!;
      if (b + LOOKAHEAD < batches.length) pending.push(prepare(store, batches[b + LOOKAHEAD]!, opts));
      failures.push(...current.failures);
      done += batches[b]!.length;
      if (current.ids.length === 0) continue;
      const started = performance.now();
      const out = await encoder.encode(current.pixels, current.ids.length);
      const seconds = (performance.now() - started) / 1000;
      current.ids.forEach((id, row) => {
        const vector = out.subarray(row * encoder.dim, (row + 1) * encoder.dim);
        if (vector.every(Number.isFinite)) {
          ids.push(id);
          chunks.push(vector.slice());
          opts.onImage?.("ok");
        } else {
          failures.push({ id, reason: "non_finite", message: "encoder produced a non-finite value" });
          opts.onImage?.("non_finite");
        }
      });
      opts.onBatch?.({ n: current.ids.length, seconds, done, total: shard.images.length });
    }
  } finally {
    // Settle the look-ahead so an abort mid-shard leaves no unhandled rejection.
    await Promise.allSettled(pending);
  }
  const vectors = new Float32Array(ids.length * encoder.dim);
  chunks.forEach((v, i) => vectors.set(v, i * encoder.dim));
  return { ids, vectors, failures };
}

async function prepare(
  store: ObjectStore,
  images: ShardList["images"],
  opts: ExtractOptions,
): Promise<Prepared> {
  const results = await Promise.all(
    images.map(async ({ id, key }) => {
      let bytes: Buffer;
      try {
        bytes = await store.get(key);
      } catch (err) {
        if (err instanceof NotFoundError)
          return { id, ok: false as const, reason: "missing" as const, message: `${key} not in store` };
        throw err;
      }
      const result = await preprocessImage(bytes, { limitInputPixels: opts.maxPixels });
      return result.ok ? { id, ok: true as const, pixels: result.pixels } : { id, ...result };
    }),
  );
  const ok = results.filter((r) => r.ok);
  const pixels = new Float32Array(ok.length * PIXELS_PER_IMAGE);
  ok.forEach((r, i) => pixels.set(r.pixels, i * PIXELS_PER_IMAGE));
  const failures: ShardFailure[] = [];
  for (const r of results) {
    if (!r.ok) {
      failures.push({ id: r.id, reason: r.reason, message: r.message });
      opts.onImage?.(r.reason);
    }
  }
  return { ids: ok.map((r) => r.id), pixels, failures };
}

export async function readShardList(store: ObjectStore, key: string): Promise<ShardList> {
  return getJson<ShardList>(store, key);
}
