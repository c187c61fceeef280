import { ByteWriter, ParquetWriter, type KeyValue, type SchemaElement } from "hyparquet-writer";
import type { RowMeta } from "./shard-rows.ts";

/**
 * The metadata half of an export part as Parquet, written row group by row group: the bytes of each
 * group are handed on (and the writer's buffer reused) before the next is encoded, so memory is one
 * row group, not the file. Written with hyparquet-writer: pure JavaScript (no native build, no wasm),
 * one dependency, streaming row groups through `ParquetWriter`, LIST columns; read back in the tests
 * by DuckDB, an independent reader.
 */

/** Rows per row group: ~300 bytes a row with 5 captions, so ~3 MB of JS objects at a time. */
const ROW_GROUP = 10_000;

const UTF8 = { type: "BYTE_ARRAY", converted_type: "UTF8" } as const;

/** Column order and types: docs/export.md. */
const SCHEMA: SchemaElement[] = [
  { name: "schema", num_children: 8 },
  { name: "row", type: "INT64", repetition_type: "REQUIRED" },
  { name: "image_id", ...UTF8, repetition_type: "REQUIRED" },
  { name: "file", ...UTF8, repetition_type: "REQUIRED" },
  { name: "split", ...UTF8, repetition_type: "REQUIRED" },
  { name: "shard_id", ...UTF8, repetition_type: "REQUIRED" },
  { name: "shard_row", type: "INT32", repetition_type: "REQUIRED" },
  { name: "caption", ...UTF8, repetition_type: "OPTIONAL" },
  { name: "captions", repetition_type: "REQUIRED", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { name: "element", ...UTF8, repetition_type: "REQUIRED" },
];

/**
 * A Parquet file of `rows` (with their export row numbers from `firstRow` on), as chunks of bytes.
 * `kv` goes into the file's key-value metadata (dataset, encoder).
 */
export async function* metadataParquet(
  rows: AsyncIterable<RowMeta[]>,
  firstRow: number,
  kv: Record<string, string>,
): AsyncGenerator<Uint8Array> {
  const writer = new ByteWriter();
  const kvMetadata: KeyValue[] = Object.entries(kv).map(([key, value]) => ({ key, value }));
  const parquet = new ParquetWriter({
    writer,
    schema: SCHEMA,
    codec: "SNAPPY",
    kvMetadata,
    createdBy: "capflow",
  });
  /** The bytes written since the last take; the buffer is reused after. */
  const take = (): Uint8Array => {
    const bytes = writer.getBytes().slice();
    writer.index = 0;
    return bytes;
  };
  let next = firstRow;
  let group: RowMeta[] = [];
  const flush = async (): Promise<Uint8Array> => {
    const start = next;
    next += group.length;
    await parquet.write({ columnData: columns(group, start), rowGroupSize: ROW_GROUP });
    group = [];
    return take();
  };
  for await (const chunk of rows) {
    for (const row of chunk) {
      group.push(row);
      if (group.length === ROW_GROUP) yield await flush();
    }
  }
  if (group.length > 0 || next === firstRow) yield await flush();
  await parquet.finish();
  yield take();
}

function columns(rows: RowMeta[], firstRow: number) {
  return [
    { name: "row", data: BigInt64Array.from(rows, (_, i) => BigInt(firstRow + i)) },
    { name: "image_id", data: rows.map((r) => r.imageId) },
    { name: "file", data: rows.map((r) => r.file) },
    { name: "split", data: rows.map((r) => r.split) },
    { name: "shard_id", data: rows.map((r) => r.shardId) },
    { name: "shard_row", data: Int32Array.from(rows, (r) => r.shardRow) },
    { name: "caption", data: rows.map((r) => r.captions[0] ?? null) },
    { name: "captions", data: rows.map((r) => r.captions) },
  ];
}
