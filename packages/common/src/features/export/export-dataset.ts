import { readDatasetInfo, type Split } from "../../dataset/manifest.ts";
import { getJson, NotFoundError, putJson, type ObjectStore } from "../../store/object-store.ts";
import type { NpyDtype } from "../npy.ts";
import { embeddingsNpy } from "./embeddings-npy.ts";
import {
  EXPORT_COLUMNS,
  EXPORT_EMBEDDINGS_DIR,
  EXPORT_MANIFEST,
  EXPORT_METADATA_DIR,
  planParts,
  sliceShards,
  type ExportManifest,
  type ExportPart,
} from "./export-layout.ts";
import { metadataParquet } from "./metadata-parquet.ts";
import { readShardRows, type ShardRows } from "./shard-rows.ts";

export interface ExportOptions {
  dataset: string;
  /** Default: the encoder the feature workers run (`encoders/current.json`). */
  encoderId?: string;
  split?: Split;
  /** Of the `.npy` files (default float32, the vectors exactly as stored). */
  dtype?: NpyDtype;
  /** Rows per `.npy`/`.parquet` pair (default 1,000,000). */
  rowsPerFile?: number;
  /** Shards read ahead of the one being written (default 2). */
  prefetch?: number;
  onProgress?: (p: { phase: "count" | "write"; done: number; total: number }) => void;
}

export class ExportError extends Error {
  override name = "ExportError";
}

/**
 * `capflow export`: a dataset's feature vectors and captions, from `source` (the capflow store) to
 * `target` (a folder or an S3 prefix, as an {@link ObjectStore}), in the layout of export-layout.ts.
 *
 * Two passes over the shards, neither holding more than a few shards: the first counts each shard's
 * exported rows (reading shard lists and indexes only) and fails early if a shard has no features
 * yet; the second writes each part, streaming its shards' vectors into the `.npy` and their rows
 * into the `.parquet`. Memory is O(prefetch × shard) plus one Parquet row group, whatever the size
 * of the dataset. `export.json` is written last.
 */
export async function exportDataset(
  source: ObjectStore,
  target: ObjectStore,
  opts: ExportOptions,
): Promise<ExportManifest> {
  const info = await readDatasetInfo(source, opts.dataset).catch((err: unknown) => {
    if (err instanceof NotFoundError)
      throw new ExportError(`no ingested dataset named "${opts.dataset}" in ${source.location}`);
    throw err;
  });
  const encoderId = opts.encoderId ?? (await currentEncoder(source));
  const dtype = opts.dtype ?? "float32";
  const prefetch = Math.max(0, opts.prefetch ?? 2);
  const at = (shardId: string) => ({ dataset: info.name, encoderId, shardId });
  const split = opts.split;
  const shardOpts = (withVectors: boolean) => ({ withVectors, ...(split ? { split } : {}) });

  // Pass 1: each shard's row count (and that every shard is there) before any byte is written.
  const counts: number[] = [];
  const missing: string[] = [];
  let quarantined = 0;
  let dim: number | undefined;
  let counted = 0;
  for await (const [shardId, read] of ahead(
    info.shards,
    (id) => readShardRows(source, at(id), shardOpts(false)),
    8,
  )) {
    try {
      const shard = await read;
      counts.push(shard.rows.length);
      quarantined += shard.quarantined;
      if (dim !== undefined && shard.dim !== dim)
        throw new ExportError(`shard ${shardId} has ${shard.dim}-d vectors, others ${dim}-d`);
      dim ??= shard.dim;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      missing.push(shardId);
      counts.push(0);
    }
    opts.onProgress?.({ phase: "count", done: ++counted, total: info.shards.length });
  }
  if (missing.length > 0) {
    throw new ExportError(
      `${missing.length} of ${info.shards.length} shards of "${info.name}" have no features from ${encoderId} yet ` +
        `(first: ${missing.slice(0, 3).join(", ")}): run feature workers until \`capflow status ${info.name}\` shows ` +
        `every shard done (\`capflow reconcile ${info.name}\` re-enqueues lost ones)`,
    );
  }
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0 || dim === undefined) {
    throw new ExportError(
      `"${info.name}" has no ${split ? `${split} ` : ""}images with features from ${encoderId}: nothing to export`,
    );
  }

  const parts = planParts(total, opts.rowsPerFile ?? 1_000_000);
  await refuseStaleParts(target, parts);
  // The old commit marker goes before any part it describes is replaced.
  await target.delete(EXPORT_MANIFEST);
  const kv = {
    "capflow.dataset": info.name,
    "capflow.encoder_id": encoderId,
    "capflow.split": split ?? "all",
  };
  let written = 0;
  for (const part of parts) {
    const slices = sliceShards(counts, part);
    const read = (withVectors: boolean) =>
      sliceRows(
        ahead(
          slices.map((s) => s),
          (s) => readShardRows(source, at(info.shards[s.shard]!), shardOpts(withVectors)),
          prefetch,
        ),
        counts,
      );
    await settleAll([
      target.putStream(
        part.embeddings,
        embeddingsNpy(
          map(read(true), ({ vectors }) => {
            written += vectors.length / dim;
            opts.onProgress?.({ phase: "write", done: written, total });
            return vectors;
          }),
          { rows: part.rows, dim, dtype },
        ),
        { contentType: "application/octet-stream" },
      ),
      target.putStream(
        part.metadata,
        metadataParquet(
          map(read(false), ({ rows }) => rows),
          part.firstRow,
          kv,
        ),
        { contentType: "application/vnd.apache.parquet" },
      ),
    ]);
  }

  const manifest: ExportManifest = {
    format: "capflow-export/1",
    dataset: info.name,
    encoderId,
    split: split ?? null,
    dim,
    dtype,
    rows: total,
    quarantined,
    shards: info.shards.length,
    columns: EXPORT_COLUMNS,
    parts,
  };
  await putJson(target, EXPORT_MANIFEST, manifest);
  return manifest;
}

async function currentEncoder(store: ObjectStore): Promise<string> {
  const current = await getJson<{ id: string }>(store, "encoders/current.json").catch(() => undefined);
  if (!current)
    throw new ExportError("no encoder has run yet: start a feature worker first, or pass --encoder <id>");
  return current.id;
}

/**
 * An export into a place that already holds part files this export will not overwrite (an earlier
 * export with more parts) would leave a folder that readers pairing files by name get wrong: refuse.
 */
async function refuseStaleParts(target: ObjectStore, parts: ExportPart[]): Promise<void> {
  const ours = new Set(parts.flatMap((p) => [p.embeddings, p.metadata]));
  const stale: string[] = [];
  for (const dir of [EXPORT_EMBEDDINGS_DIR, EXPORT_METADATA_DIR]) {
    for await (const { key } of target.list(dir)) if (!ours.has(key)) stale.push(key);
  }
  if (stale.length > 0) {
    throw new ExportError(
      `${target.location} already holds ${stale.length} files this export would not replace (${stale.slice(0, 3).join(", ")}): ` +
        `export to an empty place, or delete ${EXPORT_EMBEDDINGS_DIR} and ${EXPORT_METADATA_DIR} there first`,
    );
  }
}

/**
 * Reads `fn(item)` for each item in order with up to `depth` more reads in flight, so reading the
 * next shards overlaps writing the current one. A failed read is rethrown when its turn comes.
 */
async function* ahead<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  depth: number,
): AsyncGenerator<[T, Promise<R>]> {
  const inFlight: Array<[T, Promise<R>]> = [];
  let next = 0;
  const fill = () => {
    while (next < items.length && inFlight.length <= depth) {
      const item = items[next++]!;
      const p = fn(item);
      p.catch(() => undefined); // awaited in order below; this only keeps an early failure from being "unhandled"
      inFlight.push([item, p]);
    }
  };
  fill();
  while (inFlight.length > 0) {
    const head = inFlight.shift()!;
    fill();
    yield head;
  }
}

/** Each slice's rows (and vectors), checked against the count of the first pass. */
async function* sliceRows(
  reads: AsyncIterable<[{ shard: number; from: number; to: number }, Promise<ShardRows>]>,
  counts: readonly number[],
): AsyncGenerator<{ rows: ShardRows["rows"]; vectors: Float32Array }> {
  for await (const [slice, read] of reads) {
    const shard = await read;
    if (shard.rows.length !== counts[slice.shard]) {
      throw new ExportError(
        `shard ${shard.rows[0]?.shardId ?? slice.shard} changed during the export (${counts[slice.shard]} rows counted, ${shard.rows.length} now)`,
      );
    }
    const vectors =
      shard.vectors?.subarray(slice.from * shard.dim, slice.to * shard.dim) ?? new Float32Array(0);
    yield { rows: shard.rows.slice(slice.from, slice.to), vectors };
  }
}

/** Like Promise.all, but returns (or throws the first error) only once every write has ended. */
async function settleAll(writes: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(writes);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function* map<T, R>(items: AsyncIterable<T>, fn: (item: T) => R): AsyncGenerator<R> {
  for await (const item of items) yield fn(item);
}
