import type { ShardFailure } from "@capflow/common";

/**
 * Per-image isolation after a worker process died mid-shard (docs/reliability.md test 7, "a poison pill
 * fails alone"). Plain functions over a small record that the job keeps in Redis
 * (./crash-journal.ts); the feature job (./jobs/extract-features.ts) writes it before every read.
 *
 * 1. While a shard runs, the record names the images in flight (the batch being encoded and the
 *    decode look-ahead), rewritten once per batch before its reads start. A clean end deletes it; an
 *    error the process survives closes it (`open: false`).
 * 2. An attempt that finds the record still open knows the last one died (crash, OOM, SIGKILL, or a
 *    lock lost while paused): the images it had in flight become suspects and run first, one at a
 *    time, nothing else in flight in the process (./isolation-gate.ts), the record naming each.
 * 3. An image that was the only one in flight at `STRIKES_TO_QUARANTINE` deaths in a row (no clean
 *    run of it in between) is quarantined as `crashed_worker` without being read again; the rest of
 *    the shard is encoded as usual.
 *
 * Why two deaths alone and not one: a death that is not the image's fault (SIGKILL by an operator or
 * the OOM killer, a paused process losing its lock, a node going away) lands on whatever is in
 * flight. One such death while an image runs alone is unlucky; two in a row, each time while that
 * same image is the only thing the process is doing, is the image. A suspect that runs alone and
 * survives is cleared. The cost: one poison image takes 3 deaths (batch, alone, alone) to isolate.
 */

/** Deaths in a row with the image alone in flight before it is quarantined. */
export const STRIKES_TO_QUARANTINE = 2;

export interface CrashRecord {
  /** True while an attempt runs; an attempt that finds it true knows the last one died. */
  open: boolean;
  /** Attempts of this shard's job that died, as far as the journal saw (for messages and logs). */
  deaths: number;
  /** Images whose reads had started and whose vectors were not yet produced when this was written. */
  inflight: string[];
  /** `inflight` is one image with nothing else in flight in the process. */
  alone: boolean;
  /** Images in flight at an earlier death that have not yet run alone and survived, in shard order. */
  suspects: string[];
  /** Image id → deaths in a row with it alone in flight (≥ STRIKES_TO_QUARANTINE: quarantined). */
  strikes: Record<string, number>;
}

export interface AttemptPlan {
  /** The previous attempt died (its record was still open). */
  died: boolean;
  /** Written when the attempt starts. */
  record: CrashRecord;
  /** Images to quarantine as `crashed_worker` without reading them. */
  quarantine: ShardFailure[];
  /** Suspects to run one at a time before the rest: those with a strike first, then shard order. */
  alone: string[];
}

const emptyRecord = (): CrashRecord => ({
  open: true,
  deaths: 0,
  inflight: [],
  alone: false,
  suspects: [],
  strikes: {},
});

/**
 * What a new attempt of a shard does, given the record the last attempt left (undefined: none, the
 * shard's first attempt or its last one ended cleanly). `imageIds` in shard order.
 */
export function planAttempt(prev: CrashRecord | undefined, imageIds: readonly string[]): AttemptPlan {
  const inShard = new Set(imageIds);
  const died = prev?.open === true;
  const strikes: Record<string, number> = {};
  for (const [id, n] of Object.entries(prev?.strikes ?? {})) if (inShard.has(id)) strikes[id] = n;
  const suspects = new Set((prev?.suspects ?? []).filter((id) => inShard.has(id)));
  let deaths = prev?.deaths ?? 0;
  if (prev && died) {
    deaths++;
    for (const id of prev.inflight) if (inShard.has(id)) suspects.add(id);
    const only = prev.inflight[0];
    if (prev.alone && prev.inflight.length === 1 && only !== undefined && inShard.has(only))
      strikes[only] = (strikes[only] ?? 0) + 1;
  }
  const quarantined = (id: string) => (strikes[id] ?? 0) >= STRIKES_TO_QUARANTINE;
  const quarantine: ShardFailure[] = imageIds.filter(quarantined).map((id) => ({
    id,
    reason: "crashed_worker",
    message:
      `the worker process died ${strikes[id]} times in a row while this image was the only one in ` +
      `flight (decode + encode); ${deaths} deaths of this shard's job in all`,
  }));
  const pending = imageIds.filter((id) => suspects.has(id) && !quarantined(id));
  const alone = [
    ...pending.filter((id) => (strikes[id] ?? 0) > 0),
    ...pending.filter((id) => (strikes[id] ?? 0) === 0),
  ];
  return {
    died,
    record: { ...emptyRecord(), deaths, suspects: alone, strikes },
    quarantine,
    alone,
  };
}

/**
 * Follows one attempt and returns the record to write before each read starts. An image that ran
 * alone and produced its outcome (vector or ordinary quarantine) survived: it stops being a suspect
 * and loses its strikes, so a strike counts only deaths in a row.
 */
export class AttemptTracker {
  private record: CrashRecord;
  private lastAlone: string | undefined;

  constructor(start: CrashRecord) {
    this.record = structuredClone(start);
  }

  /** Before the reads of `ids` start (`alone`: one image, nothing else in flight). */
  inflight(ids: readonly string[], alone: boolean): CrashRecord {
    this.clearSurvivor();
    if (alone) this.lastAlone = ids[0];
    this.record = { ...this.record, open: true, inflight: [...ids], alone };
    return this.current();
  }

  /**
   * The attempt ends without dying: `completed` just before its output is committed, else after an
   * error it survived (an image alone at that moment keeps its suspicion: it may never have run).
   */
  close(completed: boolean): CrashRecord {
    if (completed) this.clearSurvivor();
    this.lastAlone = undefined;
    this.record = { ...this.record, open: false, inflight: [], alone: false };
    return this.current();
  }

  current(): CrashRecord {
    return structuredClone(this.record);
  }

  private clearSurvivor(): void {
    const id = this.lastAlone;
    if (id === undefined) return;
    this.lastAlone = undefined;
    const strikes = { ...this.record.strikes };
    delete strikes[id];
    this.record = { ...this.record, suspects: this.record.suspects.filter((s) => s !== id), strikes };
  }
}
