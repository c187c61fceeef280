import type { Split } from "../../dataset/manifest.ts";
import type { NpyDtype } from "../npy.ts";

/**
 * The layout `capflow export` writes: the one clip-retrieval's inference writes and embedding-reader's
 * `parquet_npy` format reads. Embeddings in `img_emb/`, metadata in `metadata/`, one `.npy` and one
 * `.parquet` per part, row i of the one being row i of the other. embedding-reader pairs the two
 * folders' files by sorted name (lexicographic), so part numbers are zero-padded to one width.
 */
export const EXPORT_EMBEDDINGS_DIR = "img_emb/";
export const EXPORT_METADATA_DIR = "metadata/";
/** Written last: an export without it is incomplete (the commit marker, as feature shards have). */
export const EXPORT_MANIFEST = "export.json";

/** One `.npy` + `.parquet` pair: rows `firstRow … firstRow + rows - 1` of the export. */
export interface ExportPart {
  index: number;
  firstRow: number;
  rows: number;
  embeddings: string;
  metadata: string;
}

/** Metadata columns, in file order (docs/export.md describes each). */
export const EXPORT_COLUMNS = [
  "row",
  "image_id",
  "file",
  "split",
  "shard_id",
  "shard_row",
  "caption",
  "captions",
] as const;

/** `export.json`. */
export interface ExportManifest {
  format: "capflow-export/1";
  dataset: string;
  encoderId: string;
  /** Only this split's images, or every image. */
  split: Split | null;
  dim: number;
  dtype: NpyDtype;
  rows: number;
  /** Images of the exported shards (and split) with no vector: quarantined by the feature worker. */
  quarantined: number;
  shards: number;
  columns: readonly string[];
  parts: ExportPart[];
}

/**
 * Cuts `totalRows` into parts of `rowsPerFile` rows (the last one shorter). Part files are numbered
 * with at least 4 digits, more when there are more parts, so that sorting by name keeps their order.
 */
export function planParts(totalRows: number, rowsPerFile: number): ExportPart[] {
  if (!Number.isInteger(rowsPerFile) || rowsPerFile < 1)
    throw new Error(`rows per file must be ≥ 1, got ${rowsPerFile}`);
  const count = Math.ceil(totalRows / rowsPerFile);
  const width = Math.max(4, String(Math.max(0, count - 1)).length);
  return Array.from({ length: count }, (_, index) => {
    const n = String(index).padStart(width, "0");
    const firstRow = index * rowsPerFile;
    return {
      index,
      firstRow,
      rows: Math.min(rowsPerFile, totalRows - firstRow),
      embeddings: `${EXPORT_EMBEDDINGS_DIR}img_emb_${n}.npy`,
      metadata: `${EXPORT_METADATA_DIR}metadata_${n}.parquet`,
    };
  });
}

/** A run of one shard's exported rows: rows `from … to - 1` of the shard's kept rows. */
export interface ShardSlice {
  shard: number;
  from: number;
  to: number;
}

/**
 * The shard slices that make up a part, from each shard's count of exported rows (in export order).
 * A shard cut by a part boundary appears in both parts.
 */
export function sliceShards(
  counts: readonly number[],
  part: Pick<ExportPart, "firstRow" | "rows">,
): ShardSlice[] {
  const slices: ShardSlice[] = [];
  const end = part.firstRow + part.rows;
  let start = 0;
  for (let shard = 0; shard < counts.length && start < end; shard++) {
    const stop = start + counts[shard]!;
    const from = Math.max(part.firstRow, start);
    const to = Math.min(end, stop);
    if (to > from) slices.push({ shard, from: from - start, to: to - start });
    start = stop;
  }
  return slices;
}
