import {
  getJson,
  keys,
  readDatasetInfo,
  readShardIndex,
  type ObjectStore,
  type ShardList,
  type Split,
} from "@capflow/common";
import { cleanCaption, countWords } from "@capflow/ml";
import { ShardWithoutCaptionsError } from "./shard-stream.ts";

/**
 * What the trainer must know before its first epoch, gathered a shard at a time from the shard lists
 * (captions, splits) and the feature indexes (which images have a vector), never reading a feature
 * matrix: the vocabulary's word counts, the longest training caption, how many images each split has
 * and which shards hold some of each split. Memory is O(vocabulary + shards), not O(images).
 */
export interface DatasetScan {
  /** Shards with some images of the split that have a vector, in the dataset's shard order. */
  shardsWith: Record<Split, string[]>;
  /** Images with a vector, per split. */
  images: Record<Split, number>;
  /** Words of the cleaned training captions and how often each occurs (unless asked not to count). */
  trainWords: Map<string, number>;
  /** Tokens of the longest cleaned training caption (`<start>`/`<end>` not counted). */
  longestTrainCaption: number;
  /** Augmented views of training images with a vector (extra training rows when a run takes them). */
  trainViews: number;
}

export class FeaturesNotReadyError extends Error {
  override name = "FeaturesNotReadyError";
}

/** Shard lists and indexes read at once: each is a small JSON object (~1 MB for 1,000 images). */
const CONCURRENT_READS = 8;

/**
 * Scans every shard of `dataset` for `encoderId`. A shard without committed features fails the run with
 * a message saying what is missing, as does a shard list without captions (ingested before shard lists
 * carried them).
 */
export async function scanShards(
  store: ObjectStore,
  dataset: string,
  encoderId: string,
  opts: { lettersOnly?: boolean; countWords?: boolean } = {},
): Promise<DatasetScan> {
  const counting = opts.countWords ?? true;
  const info = await readDatasetInfo(store, dataset);
  const scan: DatasetScan = {
    shardsWith: { train: [], val: [], test: [] },
    images: { train: 0, val: 0, test: 0 },
    trainWords: new Map(),
    longestTrainCaption: 0,
    trainViews: 0,
  };
  const missing: string[] = [];
  for (let start = 0; start < info.shards.length; start += CONCURRENT_READS) {
    const ids = info.shards.slice(start, start + CONCURRENT_READS);
    const read = await Promise.all(
      ids.map(async (shardId) => {
        const [list, index] = await Promise.all([
          getJson<ShardList>(store, keys.shardList(dataset, shardId)),
          readShardIndex(store, encoderId, dataset, shardId).catch(() => undefined),
        ]);
        return { shardId, list, index };
      }),
    );
    for (const { shardId, list, index } of read) {
      if (!index) {
        missing.push(shardId);
        continue;
      }
      const withVector = new Set(index.ids);
      const has: Record<Split, boolean> = { train: false, val: false, test: false };
      for (const image of list.images) {
        if (!withVector.has(image.id)) continue;
        if (!image.captions || !image.split)
          throw new ShardWithoutCaptionsError(
            `shard ${shardId} of "${dataset}" lists no captions or split for ${image.id}: ingest the ` +
              `dataset again (nothing already stored or encoded is redone)`,
          );
        has[image.split] = true;
        scan.images[image.split]++;
        if (image.split !== "train" || !counting) continue;
        const cleaned = image.captions.map((c) => cleanCaption(c, { lettersOnly: opts.lettersOnly }));
        countWords(scan.trainWords, cleaned);
        for (const t of cleaned) scan.longestTrainCaption = Math.max(scan.longestTrainCaption, t.length);
      }
      for (const split of ["train", "val", "test"] as const)
        if (has[split]) scan.shardsWith[split].push(shardId);
      const train = new Set(
        list.images.filter((i) => i.split === "train" && withVector.has(i.id)).map((i) => i.id),
      );
      for (const { source } of index.views?.rows ?? []) if (train.has(source)) scan.trainViews++;
    }
  }
  if (missing.length > 0)
    throw new FeaturesNotReadyError(
      `${missing.length} of ${info.shards.length} shards of "${dataset}" have no features for encoder ${encoderId} yet ` +
        `(run feature workers: capflow worker features), e.g. ${missing.slice(0, 3).join(", ")}`,
    );
  return scan;
}
