import fs from "node:fs/promises";
import path from "node:path";
import {
  CommonEnv,
  createStore,
  exportDataset,
  exportTarget,
  parseEnv,
  type ExportManifest,
} from "@capflow/common";
import { progress } from "./progress.ts";

export interface ExportCommandOptions {
  to: string;
  split?: "train" | "val" | "test";
  encoder?: string;
  dtype: "float32" | "float16";
  rowsPerFile: number;
  json: boolean;
}

/**
 * `capflow export <dataset> --to <dir|s3://…>`: needs only the store (no Redis, no model runtime).
 * Progress on stderr; the summary (or export.json with --json) on stdout.
 */
export async function exportCommand(dataset: string, opts: ExportCommandOptions): Promise<ExportManifest> {
  const env = parseEnv(CommonEnv, process.env, "export");
  const source = createStore(env);
  const target = exportTarget(opts.to, env);
  const counting = progress(`counting shards of ${dataset}`);
  const writing = progress(`exporting ${dataset}`);
  try {
    const manifest = await exportDataset(source, target, {
      dataset,
      ...(opts.encoder ? { encoderId: opts.encoder } : {}),
      ...(opts.split ? { split: opts.split } : {}),
      dtype: opts.dtype,
      rowsPerFile: opts.rowsPerFile,
      onProgress: ({ phase, done, total }) => {
        if (phase === "count") counting.update(done, total);
        else {
          counting.stop();
          writing.update(done, total);
        }
      },
    });
    writing.stop();
    process.stdout.write(opts.json ? `${JSON.stringify(manifest)}\n` : summary(manifest, target.location));
    return manifest;
  } finally {
    counting.stop();
    writing.stop();
    await source.close();
    await target.close();
    // A folder target gets the local store's temporary folder; it is empty after a finished export.
    if (target.kind === "local") await fs.rmdir(path.join(target.location, ".tmp")).catch(() => undefined);
  }
}

function summary(m: ExportManifest, location: string): string {
  return (
    `exported ${m.rows} images of ${m.dataset}${m.split ? ` (${m.split} split)` : ""} to ${location}\n` +
    `  vectors: ${m.dim}-d ${m.dtype} from ${m.encoderId}, ${m.parts.length} part${m.parts.length === 1 ? "" : "s"} ` +
    `(${m.parts[0]!.embeddings} + ${m.parts[0]!.metadata}${m.parts.length > 1 ? ", …" : ""})\n` +
    (m.quarantined ? `  left out: ${m.quarantined} quarantined images (no vector)\n` : "")
  );
}
