import { Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

interface ExportCliOptions {
  to: string;
  split?: "train" | "val" | "test";
  encoder?: string;
  dtype: "float32" | "float16";
  rowsPerFile: number;
  json: boolean;
}

export function registerExport(program: Command): void {
  program
    .command("export")
    .summary("write a dataset's feature vectors and captions as .npy + Parquet for use outside capflow")
    .description(
      "Write an ingested dataset's extracted feature vectors and its captions in the layout that\n" +
        'clip-retrieval writes and embedding-reader (file_format="parquet_npy") reads:\n\n' +
        "  <to>/img_emb/img_emb_0000.npy          float matrix, one row per image with a vector\n" +
        "  <to>/metadata/metadata_0000.parquet    the same rows: row, image_id, file, split, shard_id,\n" +
        "                                         shard_row, caption, captions\n" +
        "  <to>/export.json                       dataset, encoder, dim, dtype, parts (written last)\n\n" +
        "Row i of a .npy file is row i of the .parquet file of the same number. Shards are streamed a\n" +
        "few at a time: memory does not grow with the dataset. Images the feature workers quarantined\n" +
        "have no vector and are left out (their count is in export.json). Every shard must have\n" +
        "features first (see `capflow status <dataset>`). --to takes a folder or s3://bucket/prefix\n" +
        "(reached with the CAPFLOW_S3_* endpoint and credentials).",
    )
    .argument("<dataset>", "an ingested dataset")
    .requiredOption("--to <dir|s3://bucket/prefix>", "where to write the export")
    .addOption(new Option("--split <split>", "only this split's images").choices(["train", "val", "test"]))
    .option("--encoder <id>", "encoder id of the features (default: the one the feature workers run)")
    .addOption(
      new Option("--dtype <dtype>", "element type of the .npy files (float16 halves their size)")
        .choices(["float32", "float16"])
        .default("float32"),
    )
    .option("--rows-per-file <n>", "rows per .npy/.parquet pair", positiveInt, 1_000_000)
    .option("--json", "print export.json instead of a summary", false)
    .action(async (dataset: string, opts: ExportCliOptions) => {
      const { exportCommand } = await import("../actions/export.ts");
      await exportCommand(dataset, opts);
    });
}
