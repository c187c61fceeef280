import { keys, type Logger, type ObjectStore } from "@capflow/common";

/**
 * What the API writes to the store expires: uploaded images (`uploads/<hour>/...`) after
 * `uploadTtlMs`, bulk caption batches (`captions/<batchId>/...`: batch, shard results, assembled
 * results) after `batchTtlMs`. Both used to be kept forever. The age comes from the key itself (the
 * upload's hour, the batch id's creation time in base 36), so a sweep is one listing per prefix and
 * no reads; it works the same on the local store and on S3 (where a lifecycle rule on `uploads/` can
 * replace it, docs/security.md).
 */
export interface RetentionPolicy {
  uploadTtlMs: number;
  batchTtlMs: number;
}

export interface SweepResult {
  uploadsDeleted: number;
  batchesExpired: string[];
  objectsDeleted: number;
}

const BATCH_ID = /^b([0-9a-z]{6,12}?)[0-9a-f]{12}$/;

/** When a batch id (`b<ms base 36><12 hex>`, caption-jobs.ts newBatchId) was made, or undefined. */
export function batchCreatedAt(batchId: string): number | undefined {
  const m = BATCH_ID.exec(batchId);
  if (!m) return undefined;
  const ms = parseInt(m[1]!, 36);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The start of an upload hour folder (`2026120115`), or undefined. */
export function uploadHourStart(hour: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(hour);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]));
}

export async function sweepExpired(
  store: ObjectStore,
  policy: RetentionPolicy,
  opts: { now?: number; onBatchExpired?: (batchId: string) => Promise<void> } = {},
): Promise<SweepResult> {
  const now = opts.now ?? Date.now();
  const result: SweepResult = { uploadsDeleted: 0, batchesExpired: [], objectsDeleted: 0 };
  const doomed: string[] = [];
  for await (const { key } of store.list(keys.uploadsPrefix)) {
    const hour = key.split("/")[1] ?? "";
    const start = uploadHourStart(hour);
    // An hour folder expires once its last possible upload is older than the TTL.
    if (start !== undefined && start + 3_600_000 + policy.uploadTtlMs <= now) doomed.push(key);
  }
  for (const key of doomed) await store.delete(key);
  result.uploadsDeleted = doomed.length;
  result.objectsDeleted += doomed.length;

  const batches = new Map<string, string[]>();
  for await (const { key } of store.list("captions/")) {
    const batchId = key.split("/")[1] ?? "";
    const created = batchCreatedAt(batchId);
    if (created === undefined || created + policy.batchTtlMs > now) continue;
    const list = batches.get(batchId) ?? [];
    list.push(key);
    batches.set(batchId, list);
  }
  for (const [batchId, objects] of batches) {
    // batch.json last: a status request during the sweep finds the batch or a clean 404.
    const ordered = [
      ...objects.filter((k) => k !== keys.captionBatch(batchId)),
      ...objects.filter((k) => k === keys.captionBatch(batchId)),
    ];
    for (const key of ordered) await store.delete(key);
    result.objectsDeleted += ordered.length;
    result.batchesExpired.push(batchId);
    await opts.onBatchExpired?.(batchId);
  }
  return result;
}

/** Runs the sweep every `intervalMs` (0: never); returns a stop function. Errors are logged, not lost. */
export function startSweeper(
  store: ObjectStore,
  policy: RetentionPolicy,
  intervalMs: number,
  log: Logger,
  onBatchExpired?: (batchId: string) => Promise<void>,
): () => void {
  if (intervalMs <= 0) return () => {};
  let running: Promise<void> | undefined;
  const tick = () => {
    running ??= sweepExpired(store, policy, { onBatchExpired })
      .then((r) => {
        if (r.objectsDeleted > 0)
          log.info(
            { uploads: r.uploadsDeleted, batches: r.batchesExpired.length, objects: r.objectsDeleted },
            "retention sweep",
          );
      })
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, "retention sweep failed"))
      .finally(() => (running = undefined));
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
