import {
  getJson,
  keys,
  readShardFeatures,
  readShardViews,
  type ObjectStore,
  type ShardIndex,
  type ShardList,
  type Split,
} from "@capflow/common";
import { rng } from "../train/train-epoch.ts";

/**
 * The trainer's data, streamed: feature shards (with their images' captions) a few at a time, in a
 * seeded shuffled order of shards and of rows within a window, the next shards read while the
 * current window is trained on. Memory is O(window + prefetch) shards, not O(dataset): loading a
 * split whole into one Float32Array took ~2 GB at peak for COCO and cannot hold 3.3M images at all
 * (a typed array tops out at 2^32-1 floats ≈ 2.1M vectors of 2048).
 *
 * Order is a pure function of (seed, epoch): a run resumed at epoch e reads the same windows in the
 * same order as an uninterrupted one.
 */

/** One image of a shard with a feature vector: what training and validation consume. */
export interface StreamedImage {
  id: string;
  key: string;
  file: string;
  split: Split;
  captions: string[];
}

/** A shard's images that have a vector, joined with their captions; vectors in row order. */
export interface LoadedShard {
  shardId: string;
  images: StreamedImage[];
  /** [images.length × dim] */
  vectors: Float32Array;
  dim: number;
}

/** Where shards come from: the store in a run, anything in a test or benchmark. */
export type ShardSource = (shardId: string) => Promise<LoadedShard>;

/** A window: a few shards' rows of one split, shuffled together. */
export interface ShardWindow {
  /** 0-based position in the epoch. */
  index: number;
  shardIds: string[];
  images: StreamedImage[];
  /** [images.length × dim] */
  features: Float32Array;
  dim: number;
}

export interface StreamOptions {
  /** Shards whose rows are shuffled together (memory grows with it). Default 4. */
  windowShards?: number;
  /** Shards read ahead while a window is consumed. Default `windowShards`. */
  prefetchShards?: number;
  /** Keep only this split's images. */
  split?: Split;
  /** Shuffle shards and rows with (seed, epoch); without it shards and rows keep their order. */
  shuffle?: { seed: number; epoch: number };
}

export class ShardWithoutCaptionsError extends Error {
  override name = "ShardWithoutCaptionsError";
}

/**
 * Reads a committed shard and its list; images the feature worker quarantined have no vector and
 * are left out. Needs the captions in the shard list (written by ingest).
 *
 * With `views`, the shard's augmented views of its training images (`<shard>.views.npy`) follow its
 * images as extra rows, each an entry of its source image (same id and captions): training rows only.
 * A view of a validation or test image, or of one without a vector, is never returned.
 */
export function storeShardSource(
  store: ObjectStore,
  dataset: string,
  encoderId: string,
  opts: { views?: boolean } = {},
): ShardSource {
  const clean = cleanShardSource(store, dataset, encoderId);
  if (!opts.views) return clean;
  return async (shardId) => {
    const shard = await clean(shardId);
    const views = await readShardViews(store, shard.index);
    if (!views) return shard;
    const byId = new Map(shard.images.map((img) => [img.id, img]));
    const rows: number[] = [];
    views.rows.forEach(({ source }, row) => {
      if (byId.get(source)?.split === "train") rows.push(row);
    });
    if (rows.length === 0) return shard;
    const { dim } = shard;
    const vectors = new Float32Array((shard.images.length + rows.length) * dim);
    vectors.set(shard.vectors);
    rows.forEach((row, i) =>
      vectors.set(views.vectors.subarray(row * dim, (row + 1) * dim), (shard.images.length + i) * dim),
    );
    const images = [...shard.images, ...rows.map((row) => byId.get(views.rows[row]!.source)!)];
    return { ...shard, images, vectors };
  };
}

function cleanShardSource(
  store: ObjectStore,
  dataset: string,
  encoderId: string,
): (shardId: string) => Promise<LoadedShard & { index: ShardIndex }> {
  return async (shardId) => {
    const [list, { index, vectors }] = await Promise.all([
      getJson<ShardList>(store, keys.shardList(dataset, shardId)),
      readShardFeatures(store, encoderId, dataset, shardId),
    ]);
    const byId = new Map(list.images.map((i) => [i.id, i]));
    const images = index.ids.map((id): StreamedImage => {
      const meta = byId.get(id);
      if (!meta?.captions || !meta.split) {
        throw new ShardWithoutCaptionsError(
          `shard ${shardId} of "${dataset}" lists no captions or split for ${id}: ingest the dataset again ` +
            `(nothing already stored or encoded is redone)`,
        );
      }
      return { id, key: meta.key, file: meta.file ?? "", split: meta.split, captions: meta.captions };
    });
    return { shardId, images, vectors, dim: index.dim, index };
  };
}

/** Seeded Fisher–Yates on a copy, with a PRNG of its own stream (so it never aliases the batch order). */
function permute<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const mix = (seed: number, epoch: number, salt: number) =>
  (Math.imul(seed ^ 0x2545f491, 0x9e3779b1) +
    Math.imul(epoch + 1, 0x85ebca6b) +
    Math.imul(salt, 0xc2b2ae35)) |
  0;

/** The epoch's shard order. */
export function shardOrder(shardIds: readonly string[], opts: StreamOptions): string[] {
  return opts.shuffle ? permute(shardIds, mix(opts.shuffle.seed, opts.shuffle.epoch, 0)) : [...shardIds];
}

/**
 * Windows of an epoch, in order. Keeps `prefetchShards` reads in flight ahead of the window being
 * consumed, so reading overlaps the compute on the previous window. A failed read fails the stream.
 */
export async function* streamWindows(
  source: ShardSource,
  shardIds: readonly string[],
  opts: StreamOptions = {},
): AsyncGenerator<ShardWindow> {
  const windowShards = Math.max(1, opts.windowShards ?? 4);
  const prefetch = Math.max(0, opts.prefetchShards ?? windowShards);
  const order = shardOrder(shardIds, opts);
  const inFlight: Array<Promise<LoadedShard>> = [];
  let next = 0;
  const fill = (upTo: number) => {
    while (inFlight.length < upTo && next < order.length) {
      const read = source(order[next++]!);
      // Handled when awaited in order; this only keeps an early rejection from being "unhandled".
      read.catch(() => undefined);
      inFlight.push(read);
    }
  };
  let index = 0;
  try {
    while (next < order.length || inFlight.length > 0) {
      fill(windowShards + prefetch);
      const shards: LoadedShard[] = [];
      for (let k = 0; k < windowShards && inFlight.length > 0; k++) shards.push(await inFlight.shift()!);
      // The next reads start now, before the caller trains on this window.
      fill(windowShards + prefetch);
      const window = assemble(shards, opts, index);
      if (window.images.length > 0) yield window;
      index++;
    }
  } finally {
    // A consumer that stops early leaves reads in flight: let them settle, never unhandled.
    await Promise.allSettled(inFlight);
  }
}

function assemble(shards: LoadedShard[], opts: StreamOptions, index: number): ShardWindow {
  const dim = shards[0]?.dim ?? 0;
  const rows: Array<{ shard: LoadedShard; row: number }> = [];
  for (const shard of shards) {
    if (shard.dim !== dim) throw new Error(`shard ${shard.shardId} has dim ${shard.dim}, expected ${dim}`);
    shard.images.forEach((img, row) => {
      if (!opts.split || img.split === opts.split) rows.push({ shard, row });
    });
  }
  const ordered = opts.shuffle ? permute(rows, mix(opts.shuffle.seed, opts.shuffle.epoch, index + 1)) : rows;
  const features = new Float32Array(ordered.length * dim);
  ordered.forEach(({ shard, row }, i) =>
    features.set(shard.vectors.subarray(row * dim, (row + 1) * dim), i * dim),
  );
  return {
    index,
    shardIds: shards.map((s) => s.shardId),
    images: ordered.map(({ shard, row }) => shard.images[row]!),
    features,
    dim,
  };
}
