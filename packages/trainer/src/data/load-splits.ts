import {
  readDatasetInfo,
  readManifest,
  readShardFeatures,
  readShardViews,
  type ObjectStore,
  type Split,
} from "@capflow/common";
import { cleanCaption } from "@capflow/ml";

/** The images of one split that have a feature vector, with their raw captions. */
export interface SplitData {
  ids: string[];
  files: string[];
  keys: string[];
  captions: string[][];
  /** [ids.length × dim] */
  features: Float32Array;
  dim: number;
  /**
   * Augmented views (train split only, when the shards have them): view r is a picture of image
   * `views.source[r]` (an index into `ids`) and is trained on with that image's captions.
   */
  views?: { source: Int32Array; features: Float32Array };
}

export class FeaturesNotReadyError extends Error {
  override name = "FeaturesNotReadyError";
}

/**
 * Joins the manifest (splits, captions) with the committed feature shards of one encoder, and the
 * training images' augmented views unless `views: false`. Shards are read one at a time; only the 2048 floats per image are kept. Quarantined images have no vector and
 * are left out. A shard without output fails the run with a message saying what is missing, unless
 * `allowMissing`.
 */
export async function loadSplits(
  store: ObjectStore,
  dataset: string,
  encoderId: string,
  opts: { allowMissing?: boolean; views?: boolean } = {},
): Promise<Record<Split, SplitData>> {
  const rows = new Map<string, { split: Split; file: string; key: string; captions: string[] }>();
  for await (const row of readManifest(store, dataset)) rows.set(row.id, row);
  const info = await readDatasetInfo(store, dataset);

  const parts: Record<
    Split,
    { ids: string[]; files: string[]; keys: string[]; captions: string[][]; vectors: Float32Array[] }
  > = {
    train: { ids: [], files: [], keys: [], captions: [], vectors: [] },
    val: { ids: [], files: [], keys: [], captions: [], vectors: [] },
    test: { ids: [], files: [], keys: [], captions: [], vectors: [] },
  };
  const missing: string[] = [];
  // Views are read for training images only: validation and test stay the clean pictures.
  const trainViews: Array<{ source: string; vector: Float32Array }> = [];
  let dim = 2048;
  for (const shardId of info.shards) {
    let shard;
    try {
      shard = await readShardFeatures(store, encoderId, dataset, shardId);
    } catch {
      missing.push(shardId);
      continue;
    }
    dim = shard.index.dim;
    shard.index.ids.forEach((id, row) => {
      const meta = rows.get(id);
      if (!meta) return;
      const part = parts[meta.split];
      part.ids.push(id);
      part.files.push(meta.file);
      part.keys.push(meta.key);
      part.captions.push(meta.captions);
      part.vectors.push(shard.vectors.slice(row * dim, (row + 1) * dim));
    });
    if (opts.views === false) continue;
    const views = await readShardViews(store, shard.index);
    views?.rows.forEach(({ source }, row) => {
      if (rows.get(source)?.split === "train")
        trainViews.push({ source, vector: views.vectors.slice(row * dim, (row + 1) * dim) });
    });
  }
  if (missing.length > 0 && !opts.allowMissing) {
    throw new FeaturesNotReadyError(
      `${missing.length} of ${info.shards.length} shards of "${dataset}" have no features for encoder ${encoderId} yet ` +
        `(run feature workers: capflow worker features), e.g. ${missing.slice(0, 3).join(", ")}`,
    );
  }
  const finish = (p: (typeof parts)[Split]): SplitData => {
    const features = new Float32Array(p.vectors.length * dim);
    p.vectors.forEach((v, i) => features.set(v, i * dim));
    return { ids: p.ids, files: p.files, keys: p.keys, captions: p.captions, features, dim };
  };
  const train = finish(parts.train);
  if (trainViews.length > 0) {
    const index = new Map(train.ids.map((id, i) => [id, i]));
    const kept = trainViews.filter((v) => index.has(v.source));
    const features = new Float32Array(kept.length * dim);
    kept.forEach((v, i) => features.set(v.vector, i * dim));
    train.views = { source: Int32Array.from(kept, (v) => index.get(v.source)!), features };
  }
  return { train, val: finish(parts.val), test: finish(parts.test) };
}

/** Cleaned token lists of every caption of a split, in image order. */
export function cleanedCaptions(split: SplitData, opts: { lettersOnly?: boolean } = {}): string[][][] {
  return split.captions.map((caps) => caps.map((c) => cleanCaption(c, opts)));
}

/**
 * Training rows: every clean image, then every augmented view carrying its source image's captions.
 * Vocabulary and caption length come from the clean images alone (a view repeats captions, it must
 * not change word counts).
 */
export function trainingRows(
  split: SplitData,
  cleaned: readonly (readonly string[][])[],
): { features: Float32Array; cleaned: (readonly string[][])[]; views: number } {
  if (!split.views || split.views.source.length === 0)
    return { features: split.features, cleaned: [...cleaned], views: 0 };
  const n = split.ids.length;
  const features = new Float32Array((n + split.views.source.length) * split.dim);
  features.set(split.features.subarray(0, n * split.dim));
  features.set(split.views.features, n * split.dim);
  return {
    features,
    cleaned: [...cleaned, ...Array.from(split.views.source, (i) => cleaned[i]!)],
    views: split.views.source.length,
  };
}
