import fs from "node:fs/promises";
import path from "node:path";
import type { ObjectStore } from "@capflow/common";
import {
  buildEmojiDataset,
  buildPhotoDataset,
  DEFAULT_PHOTO_SOURCES,
  ingestDataset,
  type IngestOptions,
} from "@capflow/ingest";

/**
 * The demo's two check sets, beside the held-out test style: the test style drawn at 64 px and
 * enlarged (recognition of a small, blurry rendering of an unseen style), and real photographs (which
 * a model trained on emoji should flag out of domain). Ingested right after the dataset, so the feature
 * workers extract them while the trainer trains.
 */
export interface CheckSet {
  dataset: string;
  label: string;
  /** What the demo prints for it: exact match for the render, the out-of-domain share for photos. */
  measure: "exact" | "outOfDomain";
}

export async function ingestCheckSets(
  home: string,
  store: ObjectStore,
  queue: Parameters<typeof ingestDataset>[1],
  size: "ci" | "demo" | "default",
): Promise<{ sets: CheckSet[]; skipped: string[] }> {
  const sets: CheckSet[] = [];
  const skipped: string[] = [];
  const ingest = (dataset: string, dir: string, format: IngestOptions["format"]) =>
    ingestDataset(store, queue, { dataset, format, dir, shardSize: 64, onError: "fail" });

  const renderDataset = `emoji-${size}-test-render-64`;
  const renderDir = path.join(home, "datasets", renderDataset);
  await buildEmojiDataset(renderDir, { size, testRender: 64 });
  await ingest(renderDataset, renderDir, "flickr8k-csv");
  sets.push({ dataset: renderDataset, label: "test style drawn at 64 px", measure: "exact" });

  const photosMissing = await fs.stat(DEFAULT_PHOTO_SOURCES[0]!).then(
    () => false,
    () => true,
  );
  if (photosMissing) {
    skipped.push("photographs (apt-get install mate-backgrounds adds them)");
  } else {
    const photosDir = path.join(home, "datasets", "photos");
    await buildPhotoDataset(photosDir);
    await ingest("photos", photosDir, "jsonl-folder");
    sets.push({ dataset: "photos", label: "real photographs", measure: "outOfDomain" });
  }
  return { sets, skipped };
}
