import fs from "node:fs/promises";
import path from "node:path";
import {
  keys,
  listShardIndexes,
  readManifest,
  readShardFeatures,
  type ObjectStore,
  type ShardFailure,
} from "@capflow/common";

export interface Ledger {
  ingested: number;
  vectors: number;
  quarantined: number;
  /** Ingested ids with neither a vector nor a quarantine entry. */
  missing: string[];
  /** Ids both vectorised and quarantined. */
  overlap: string[];
  /** Ids that appear more than once across shards (vectors or quarantine). */
  twice: string[];
  /** Ids in outputs that the manifest does not name. */
  unknown: string[];
  /** Ids whose vector is not 2048 finite floats. */
  badVectors: string[];
  reasons: Record<string, number>;
  shards: number;
}

/**
 * Conservation at rest: every ingested image (manifest id) ends as exactly one valid vector or in
 * quarantine with a reason, never both, never twice.
 */
export async function checkLedger(store: ObjectStore, dataset: string, encoderId: string): Promise<Ledger> {
  const ingested = new Set<string>();
  for await (const row of readManifest(store, dataset)) ingested.add(row.id);
  const seen = new Map<string, number>();
  const vectorIds = new Set<string>();
  const failed = new Map<string, ShardFailure>();
  const badVectors: string[] = [];
  let shards = 0;
  const count = (id: string) => seen.set(id, (seen.get(id) ?? 0) + 1);
  for await (const index of listShardIndexes(store, encoderId, dataset)) {
    shards++;
    const { vectors } = await readShardFeatures(store, encoderId, dataset, index.shardId);
    if (index.dim !== 2048) badVectors.push(...index.ids);
    index.ids.forEach((id, row) => {
      count(id);
      vectorIds.add(id);
      const v = vectors.subarray(row * index.dim, (row + 1) * index.dim);
      if (v.length !== 2048 || !v.every(Number.isFinite)) badVectors.push(id);
    });
    for (const f of index.failures) {
      count(f.id);
      failed.set(f.id, f);
    }
  }
  const reasons: Record<string, number> = {};
  for (const f of failed.values()) reasons[f.reason] = (reasons[f.reason] ?? 0) + 1;
  const all = new Set([...vectorIds, ...failed.keys()]);
  return {
    ingested: ingested.size,
    vectors: vectorIds.size,
    quarantined: failed.size,
    missing: [...ingested].filter((id) => !all.has(id)),
    overlap: [...vectorIds].filter((id) => failed.has(id)),
    twice: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    unknown: [...all].filter((id) => !ingested.has(id)),
    badVectors,
    reasons,
    shards,
  };
}

/** The write log of the fault preload: how many times each store key was committed. */
export async function writeCounts(logFile: string, storeRoot: string): Promise<Map<string, number>> {
  const text = await fs.readFile(logFile, "utf8").catch(() => "");
  const counts = new Map<string, number>();
  const root = path.resolve(storeRoot) + path.sep;
  for (const line of text.split("\n")) {
    const file = line.slice(line.indexOf(" ") + 1);
    if (!file.startsWith(root)) continue;
    const key = file.slice(root.length).split(path.sep).join("/");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Feature outputs (matrix or index) written more than once: duplicated work. */
export function duplicateFeatureWrites(counts: Map<string, number>, encoderId: string): string[] {
  const prefix = `features/${encoderId}/`;
  return [...counts].filter(([k, n]) => k.startsWith(prefix) && n > 1).map(([k, n]) => `${k} ×${n}`);
}

export const featureKeys = { index: keys.featureIndex, matrix: keys.featureMatrix };
