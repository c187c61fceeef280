import fs from "node:fs/promises";
import path from "node:path";
import { keys, type TypedQueue } from "@capflow/common";

/**
 * What an injected fault hit, decided from the outside when it was injected:
 * - `job-in-flight`: the process it struck held a job (BullMQ's `processedBy` names the worker's pid;
 *   for a Redis fault, any running worker held one);
 * - `shard-commit`: a SIGKILL that landed between a shard's matrix and its index (the write log shows
 *   the matrix committed by that pid, not the index): the window the commit marker exists for;
 * - `queued-work`: a Redis fault while jobs waited but none was held (a restart without persistence
 *   loses them; reconcile must bring them back);
 * - `nothing`: an idle worker, or a pipeline with no work left. It still counts as a fault injected,
 *   but not as one survived.
 */
export type FaultHit = "job-in-flight" | "shard-commit" | "queued-work" | "nothing";
const HITS: readonly FaultHit[] = ["job-in-flight", "shard-commit", "queued-work", "nothing"];

export class FaultRecord {
  readonly faults: Array<{ kind: string; hit: FaultHit; jobs: string[] }> = [];

  add(kind: string, hit: FaultHit, jobs: string[] = []): void {
    this.faults.push({ kind, hit, jobs });
  }

  /** Faults that hit live work: anything but `nothing`. */
  get live(): number {
    return this.faults.filter((f) => f.hit !== "nothing").length;
  }

  /** Per kind, how many hit what (every hit named, zeros included, so a report compares runs). */
  breakdown(): Record<string, Record<FaultHit, number>> {
    const out: Record<string, Record<FaultHit, number>> = {};
    for (const f of this.faults) {
      const row = (out[f.kind] ??= Object.fromEntries(HITS.map((h) => [h, 0])) as Record<FaultHit, number>);
      row[f.hit]++;
    }
    return out;
  }
}

/** Active jobs held by the worker process `pid` (see `workerName` in packages/common/src/queue). */
export async function jobsHeldBy(queue: TypedQueue<"features">, pids: number[]): Promise<string[]> {
  const suffixes = pids.map((pid) => `:${pid}`);
  return (await queue.getActive())
    .filter((job) => job.processedBy && suffixes.some((s) => job.processedBy!.endsWith(s)))
    .map((job) => job.id!);
}

/**
 * Shards whose matrix `pid` committed without committing the index after it (from the fault
 * preload's write log): a kill inside a shard's commit.
 */
export async function interruptedCommits(
  writeLog: string,
  storeDir: string,
  pid: number,
  encoderId: string,
  dataset: string,
): Promise<string[]> {
  const text = await fs.readFile(writeLog, "utf8").catch(() => "");
  const root = path.resolve(storeDir) + path.sep;
  const prefix = keys.featurePrefix(encoderId, dataset);
  const matrices = new Set<string>();
  const indexes = new Set<string>();
  for (const line of text.split("\n")) {
    const space = line.indexOf(" ");
    if (Number(line.slice(0, space)) !== pid) continue;
    const file = line.slice(space + 1);
    if (!file.startsWith(root)) continue;
    const key = file.slice(root.length).split(path.sep).join("/");
    if (!key.startsWith(prefix)) continue;
    const shard = key.slice(prefix.length).replace(/\.(npy|json)$/, "");
    (key.endsWith(".npy") ? matrices : indexes).add(shard);
  }
  return [...matrices].filter((s) => !indexes.has(s));
}
