import { getJson, NotFoundError, type ObjectStore, type ShardFailure, type ShardList } from "@capflow/common";
import { PIXELS_PER_IMAGE, preprocessImage, type Encoder } from "@capflow/ml";
import { IsolationGate } from "../isolation-gate.ts";

export type { ShardFailure, ShardList };
export type FailureReason = ShardFailure["reason"];

export interface ExtractOptions {
  batchSize: number;
  maxPixels: number;
  signal?: AbortSignal;
  onBatch?: (info: { n: number; seconds: number; done: number; total: number }) => void;
  onImage?: (status: "ok" | FailureReason) => void;
  /**
   * Crash isolation (../crash-isolation.ts): images to run first, one at a time (read, decode,
   * encode), with nothing else of the shard in flight.
   */
  alone?: readonly string[];
  /** Images not to read at all (quarantined before the run); reported as failures in their place. */
  quarantine?: readonly ShardFailure[];
  /**
   * Awaited before the reads of `ids` start: they are in flight until the next call (the crash
   * journal). A throw stops the shard.
   */
  beforeRead?: (ids: string[], alone: boolean) => Promise<void>;
  /** The process-wide gate: images run alone hold it exclusively, batches share it. */
  gate?: IsolationGate;
}

type Prepared = { ids: string[]; pixels: Float32Array; failures: ShardFailure[] };
type Image = ShardList["images"][number];

/**
 * Turns one shard into vectors. Decoding the next batch overlaps inference on the current one (sharp
 * works on libuv's pool, ONNX Runtime on its own threads). A bad image fails alone into `failures`;
 * an infrastructure error (store unreachable) throws so the job is retried. Outputs are in shard
 * order whatever the processing order, so a redone shard (isolation first) writes the same bytes:
 * ONNX Runtime on CPU gives an image the same vector alone or in a batch of 8 (measured, bit for bit).
 */
export async function extractShard(
  store: ObjectStore,
  encoder: Encoder,
  shard: ShardList,
  opts: ExtractOptions,
): Promise<{ ids: string[]; vectors: Float32Array; failures: ShardFailure[] }> {
  const total = shard.images.length;
  const position = new Map(shard.images.map((img, i) => [img.id, i]));
  const skipped = new Map((opts.quarantine ?? []).map((f) => [f.id, f]));
  const aloneIds = new Set((opts.alone ?? []).filter((id) => position.has(id) && !skipped.has(id)));
  const byId = new Map(shard.images.map((img) => [img.id, img]));
  const alone = [...aloneIds].map((id) => byId.get(id)!);
  const rest = shard.images.filter((img) => !aloneIds.has(img.id) && !skipped.has(img.id));
  const gate = opts.gate ?? new IsolationGate();

  const rows: Array<{ id: string; vector: Float32Array }> = [];
  const failures: ShardFailure[] = [...skipped.values()];
  for (const f of skipped.values()) opts.onImage?.(f.reason);
  let done = skipped.size;

  const encode = async (current: Prepared, n: number) => {
    failures.push(...current.failures);
    done += n;
    if (current.ids.length === 0) return;
    const started = performance.now();
    const out = await encoder.encode(current.pixels, current.ids.length);
    const seconds = (performance.now() - started) / 1000;
    current.ids.forEach((id, row) => {
      const vector = out.subarray(row * encoder.dim, (row + 1) * encoder.dim);
      if (vector.every(Number.isFinite)) {
        rows.push({ id, vector: vector.slice() });
        opts.onImage?.("ok");
      } else {
        failures.push({ id, reason: "non_finite", message: "encoder produced a non-finite value" });
        opts.onImage?.("non_finite");
      }
    });
    opts.onBatch?.({ n: current.ids.length, seconds, done, total });
  };

  if (alone.length > 0)
    await gate.runExclusive(async () => {
      for (const img of alone) {
        opts.signal?.throwIfAborted();
        await opts.beforeRead?.([img.id], true);
        await encode(await prepare(store, [img], opts), 1);
      }
      // Nothing in flight any more: a death while this shard waits for the gate (another shard's
      // suspect running alone) must not be pinned on the last image that ran alone here.
      await opts.beforeRead?.([], false);
    });
  if (rest.length > 0) await gate.runShared(() => runBatches(store, rest, opts, encode));

  rows.sort((a, b) => position.get(a.id)! - position.get(b.id)!);
  failures.sort((a, b) => position.get(a.id)! - position.get(b.id)!);
  const vectors = new Float32Array(rows.length * encoder.dim);
  rows.forEach((r, i) => vectors.set(r.vector, i * encoder.dim));
  return { ids: rows.map((r) => r.id), vectors, failures };
}

async function runBatches(
  store: ObjectStore,
  images: Image[],
  opts: ExtractOptions,
  encode: (current: Prepared, n: number) => Promise<void>,
): Promise<void> {
  const batches: Image[][] = [];
  for (let i = 0; i < images.length; i += opts.batchSize) batches.push(images.slice(i, i + opts.batchSize));
  // Decode two batches ahead: with one, the encoder sat idle 10-14% of the time waiting for the next
  // (measured by scripts/bench/features.ts).
  const LOOKAHEAD = 2;
  // Before any read starts, the journal names every image whose read may have started and whose
  // vector is not out yet: batches b..b+LOOKAHEAD (b is encoded next), one write per batch.
  const inflight = (from: number) =>
    batches.slice(from, from + LOOKAHEAD + 1).flatMap((batch) => batch.map((img) => img.id));
  // A look-ahead read that fails while the current batch encodes must not count as an unhandled
  // rejection (Node's default kills the process): it is awaited, and thrown, in its turn.
  const ahead = (batch: Image[]) => {
    const p = prepare(store, batch, opts);
    p.catch(() => undefined);
    return p;
  };
  await opts.beforeRead?.(inflight(0), false);
  const pending = batches.slice(0, LOOKAHEAD).map(ahead);
  try {
    for (let b = 0; b < batches.length; b++) {
      opts.signal?.throwIfAborted();
      const current = await pending.shift()!;
      if (b > 0) await opts.beforeRead?.(inflight(b), false);
      if (b + LOOKAHEAD < batches.length) pending.push(ahead(batches[b + LOOKAHEAD]!));
      await encode(current, batches[b]!.length);
    }
  } finally {
    // Settle the look-ahead so an abort mid-shard leaves no unhandled rejection.
    await Promise.allSettled(pending);
  }
}

async function prepare(store: ObjectStore, images: Image[], opts: ExtractOptions): Promise<Prepared> {
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
