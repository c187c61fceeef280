import { createInterface } from "node:readline";
import * as keys from "../store/keys.ts";
import { getJson, type ObjectStore } from "../store/object-store.ts";

export type Split = "train" | "val" | "test";

/** One line of `datasets/<name>/manifest.jsonl`: an image stored once by content, its split and captions. */
export interface ManifestRow {
  id: string;
  key: string;
  /** The file name the dataset gave it (for reports). */
  file: string;
  split: Split;
  captions: string[];
}

/** `datasets/<name>/dataset.json`: counts and the shard ids, in order. */
export interface DatasetInfo {
  name: string;
  format: string;
  images: number;
  captions: number;
  splits: Record<Split, number>;
  shards: string[];
  shardSize: number;
  /**
   * Images of each shard per split, `[train, val, test]`, aligned with `shards`: a bulk caption job
   * for one split enqueues only the shards that hold some of it. Absent in datasets ingested before.
   */
  shardSplits?: Array<[number, number, number]>;
  /** Augmented views per training image the shards carry (ingest `--augment-views`), when any. */
  augment?: { views: number; recipe: string };
}

export async function* readManifest(store: ObjectStore, dataset: string): AsyncIterable<ManifestRow> {
  const lines = createInterface({
    input: await store.getStream(keys.manifest(dataset)),
    crlfDelay: Infinity,
  });
  for await (const line of lines) if (line.trim()) yield JSON.parse(line) as ManifestRow;
}

export function readDatasetInfo(store: ObjectStore, dataset: string): Promise<DatasetInfo> {
  return getJson<DatasetInfo>(store, keys.datasetInfo(dataset));
}
