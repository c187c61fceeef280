import { describe, expect, it } from "vitest";
import { AttemptTracker, planAttempt, STRIKES_TO_QUARANTINE, type CrashRecord } from "./crash-isolation.ts";

const ids = ["a", "b", "c", "d", "e", "f"];

/** The record an attempt leaves when it dies right after writing `ids` in flight. */
function diesWith(start: CrashRecord, inflight: string[], alone: boolean): CrashRecord {
  const t = new AttemptTracker(start);
  return t.inflight(inflight, alone);
}

describe("planAttempt", () => {
  it("plans a plain run when no attempt left a record", () => {
    const plan = planAttempt(undefined, ids);
    expect(plan).toMatchObject({ died: false, quarantine: [], alone: [] });
    expect(plan.record).toEqual({
      open: true,
      deaths: 0,
      inflight: [],
      alone: false,
      suspects: [],
      strikes: {},
    });
  });

  it("runs the images in flight at a death one at a time, in shard order, and quarantines none", () => {
    const died = diesWith(planAttempt(undefined, ids).record, ["e", "b", "c"], false);
    const plan = planAttempt(died, ids);
    expect(plan.died).toBe(true);
    expect(plan.alone).toEqual(["b", "c", "e"]);
    expect(plan.quarantine).toEqual([]);
    expect(plan.record).toMatchObject({ deaths: 1, suspects: ["b", "c", "e"], strikes: {} });
  });

  it("quarantines an image only after two deaths in a row with it alone in flight", () => {
    // Death 1: in a batch. Death 2: alone (strike 1). Death 3: alone again, first of its attempt.
    const r1 = diesWith(planAttempt(undefined, ids).record, ["a", "b", "c", "d"], false);
    const p2 = planAttempt(r1, ids);
    const t2 = new AttemptTracker(p2.record);
    t2.inflight(["a"], true); // a survives alone
    const r2 = t2.inflight(["b"], true); // b kills the process
    const p3 = planAttempt(r2, ids);
    expect(p3.quarantine).toEqual([]);
    expect(p3.record.strikes).toEqual({ b: 1 });
    expect(p3.alone).toEqual(["b", "c", "d"]); // the struck one first, a is cleared
    const r3 = diesWith(p3.record, ["b"], true);
    const p4 = planAttempt(r3, ids);
    expect(p4.quarantine).toEqual([
      {
        id: "b",
        reason: "crashed_worker",
        message:
          "the worker process died 2 times in a row while this image was the only one in flight " +
          "(decode + encode); 3 deaths of this shard's job in all",
      },
    ]);
    expect(p4.alone).toEqual(["c", "d"]);
    expect(p4.record.deaths).toBe(3);
    expect(STRIKES_TO_QUARANTINE).toBe(2);
  });

  it("does not quarantine a good image that was alone at one death that was not its fault", () => {
    // A SIGKILL / paused process lands while "c" runs alone; next attempt "c" runs alone and survives.
    const r1 = diesWith(planAttempt(undefined, ids).record, ["c", "d"], false);
    const r2 = diesWith(planAttempt(r1, ids).record, ["c"], true);
    const p3 = planAttempt(r2, ids);
    expect(p3.record.strikes).toEqual({ c: 1 });
    const t3 = new AttemptTracker(p3.record);
    t3.inflight(["c"], true);
    t3.inflight(["d"], true);
    const batch = t3.inflight(["a", "b", "e", "f"], false);
    expect(batch.strikes).toEqual({});
    expect(batch.suspects).toEqual([]);
    // Another unrelated death, now in the batch phase: "c" starts from zero again.
    const p4 = planAttempt(batch, ids);
    expect(p4.quarantine).toEqual([]);
    expect(p4.alone).toEqual(["a", "b", "e", "f"]);
  });

  it("counts no death when the last attempt ended with an error it survived", () => {
    const p1 = planAttempt(undefined, ids);
    const t1 = new AttemptTracker(p1.record);
    t1.inflight(["a", "b"], false);
    const closed = t1.close(false);
    expect(closed).toMatchObject({ open: false, inflight: [] });
    const p2 = planAttempt(closed, ids);
    expect(p2).toMatchObject({ died: false, alone: [], quarantine: [] });
    expect(p2.record.deaths).toBe(0);
  });

  it("keeps a suspect whose alone run was cut short by a survived error", () => {
    const r1 = diesWith(planAttempt(undefined, ids).record, ["a", "b"], false);
    const t2 = new AttemptTracker(planAttempt(r1, ids).record);
    t2.inflight(["a"], true);
    t2.inflight(["b"], true); // a survived; b's read fails with a store error
    const closed = t2.close(false);
    expect(closed.suspects).toEqual(["b"]);
    expect(planAttempt(closed, ids).alone).toEqual(["b"]);
  });

  it("ignores ids that are not in the shard (a record from another shard list)", () => {
    const rec: CrashRecord = {
      open: true,
      deaths: 4,
      inflight: ["zz"],
      alone: true,
      suspects: ["yy", "a"],
      strikes: { zz: 1, xx: 5 },
    };
    const plan = planAttempt(rec, ids);
    expect(plan.quarantine).toEqual([]);
    expect(plan.alone).toEqual(["a"]);
    expect(plan.record.strikes).toEqual({});
  });

  it("keeps quarantining a crashed image after later deaths, and isolates the next poison", () => {
    // Two poison images b and e: b is quarantined after 3 deaths, then e kills a batch.
    let rec = diesWith(planAttempt(undefined, ids).record, ["a", "b", "c"], false);
    rec = diesWith(planAttempt(rec, ids).record, ["b"], true);
    rec = diesWith(planAttempt(rec, ids).record, ["b"], true);
    let plan = planAttempt(rec, ids);
    expect(plan.quarantine.map((f) => f.id)).toEqual(["b"]);
    const t = new AttemptTracker(plan.record);
    t.inflight(["a"], true);
    t.inflight(["c"], true);
    rec = t.inflight(["d", "e", "f"], false);
    plan = planAttempt(rec, ids);
    expect(plan.quarantine.map((f) => f.id)).toEqual(["b"]);
    expect(plan.alone).toEqual(["d", "e", "f"]);
    rec = diesWith(plan.record, ["e"], true);
    rec = diesWith(planAttempt(rec, ids).record, ["e"], true);
    plan = planAttempt(rec, ids);
    expect(plan.quarantine.map((f) => f.id)).toEqual(["b", "e"]);
    expect(plan.record.deaths).toBe(6);
  });
});

describe("AttemptTracker", () => {
  it("names the images in flight before each read and clears survivors", () => {
    const t = new AttemptTracker({
      open: true,
      deaths: 1,
      inflight: [],
      alone: false,
      suspects: ["a", "b"],
      strikes: { a: 1 },
    });
    expect(t.inflight(["a"], true)).toMatchObject({ inflight: ["a"], alone: true, suspects: ["a", "b"] });
    expect(t.inflight(["b"], true)).toMatchObject({ inflight: ["b"], suspects: ["b"], strikes: {} });
    // After the alone phase: nothing in flight, b cleared too.
    expect(t.inflight([], false)).toMatchObject({ inflight: [], alone: false, suspects: [] });
    expect(t.inflight(["c", "d"], false)).toMatchObject({ inflight: ["c", "d"], alone: false, suspects: [] });
    expect(t.close(true)).toMatchObject({ open: false, inflight: [], suspects: [], strikes: {} });
  });
});
