import { getJson, keys, readDatasetInfo, type ObjectStore } from "@capflow/common";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The encoder the feature workers run, once one has started. */
export interface AnnouncedEncoder {
  id: string;
  /** A quantised encoder's cosine agreement with fp32, measured when it was built. */
  quality?: { n: number; mean: number; p1: number };
}

export async function waitForEncoder(store: ObjectStore, timeoutMs = 300_000): Promise<AnnouncedEncoder> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await getJson<AnnouncedEncoder>(store, "encoders/current.json").catch(() => undefined);
    if (current) return current;
    if (Date.now() > deadline)
      throw new Error("no feature worker announced its encoder; see .capflow/logs/features-*.log");
    await sleep(500);
  }
}

/** Polls the store until every shard of the dataset has committed features; reports progress. */
export async function waitForFeatures(
  store: ObjectStore,
  dataset: string,
  encoderId: string,
  onProgress: (done: number, total: number) => void,
  isAlive: () => boolean,
): Promise<void> {
  const { shards } = await readDatasetInfo(store, dataset);
  const done = new Set<string>();
  while (done.size < shards.length) {
    for (const shardId of shards) {
      if (!done.has(shardId) && (await store.head(keys.featureIndex(encoderId, dataset, shardId))))
        done.add(shardId);
    }
    onProgress(done.size, shards.length);
    if (done.size < shards.length) {
      if (!isAlive()) throw new Error("every feature worker has exited; see .capflow/logs/features-*.log");
      await sleep(1_000);
    }
  }
}
