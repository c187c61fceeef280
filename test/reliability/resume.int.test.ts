import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore } from "@capflow/common";
import { rng } from "@capflow/trainer";
import { preparePublishedModel } from "../support/pipeline.ts";
import { tempDir, testEnv } from "../support/services.ts";
import {
  compareCheckpoints,
  compareHistories,
  fixedPlan,
  TrainingRig,
} from "../support/fault/training-run.ts";

const EPOCHS = 5;
/**
 * The trainer is deterministic per seed (data order from seed + epoch, dropout masks from seed +
 * optimizer step, Adam's state checkpointed): the resumed run is expected to match to the bit, and does
 * on the wasm backend. The tolerance only leaves room for a backend that reduces in a varying order.
 */
const TOLERANCE = 1e-6;

// docs/reliability.md test 13, CI size: the same run trained straight, and with its trainer SIGKILLed
// four times (mid-epoch, during a checkpoint upload, at a random point, right after the last commit
// marker), restarted each time; BullMQ hands the job over, the operator resubmits when it failed.
describe("resume correctness under kills (docs/reliability.md test 13)", () => {
  let rig: TrainingRig;

  beforeAll(async () => {
    const storeDir = path.join(await tempDir("resume"), "store");
    const { encoder } = await preparePublishedModel(new LocalStore(storeDir), { images: 24, epochs: 1 });
    rig = new TrainingRig(storeDir, testEnv(), {
      dataset: "drawn",
      encoderId: encoder.id,
      method: "teacher-forcing",
      epochs: EPOCHS,
      seed: 7,
      batchSize: 8,
      learningRate: 0.01,
      minWordCount: 1,
      // Dropout on: its masks follow the optimizer step, which a resume must restore.
      model: { embedDim: 16, units: 32, dropout: 0.3 },
      beamWidth: 2,
    });
  });
  afterAll(() => rig?.close());

  it("a trainer killed mid-epoch, mid-upload, at random and after a commit resumes to the straight run's losses and weights", async () => {
    const t0 = Date.now();
    const straight = await rig.straight("straight", 180_000);
    const t1 = Date.now();
    const epochSeconds = straight.history.reduce((s, h) => s + h.seconds, 0) / EPOCHS;
    const killed = await rig.withKills(
      "killed",
      fixedPlan([
        { kind: "mid-epoch", epoch: 2, fraction: 0.5 },
        { kind: "checkpoint-upload", epoch: 3, beforeFile: "optimizer.bin" },
        { kind: "random", delayMs: Math.round(rng(13)() * 2 * epochSeconds * 1000) },
        { kind: "after-commit", epoch: EPOCHS },
      ]),
      300_000,
    );
    const t2 = Date.now();
    const history = compareHistories(straight.history, killed.result.history);
    const ckpt = await compareCheckpoints(rig.store, "straight", "killed");
    const commits = await rig.commitCounts("killed", killed.kills);
    console.info(
      `resume (CI): ${killed.kills.length} kills ${JSON.stringify(killed.kills.map((k) => `${k.planned}→${k.observed}@${k.committed}`))}, ` +
        `resubmits ${killed.resubmits}, trainer starts ${killed.trainerStarts}, resumed from ${killed.resumedFrom}, ` +
        `max diff history ${JSON.stringify(history)} weights ${ckpt.weights} adam ${ckpt.optimizerSlots}; ` +
        `straight ${(t1 - t0) / 1000} s, killed ${(t2 - t1) / 1000} s`,
    );

    // The faults happened, where they were aimed, each to a trainer that held the run.
    expect(killed.kills.length).toBeGreaterThanOrEqual(3);
    expect(killed.kills.map((k) => k.observed)).toEqual(
      expect.arrayContaining(["mid-epoch", "checkpoint-upload", "after-commit"]),
    );
    expect(killed.kills.every((k) => k.heldJob)).toBe(true);
    expect(killed.kills.find((k) => k.planned === "checkpoint-upload")?.partialFiles).toBe(2);
    // Each restart resumed from the newest commit; the last one had nothing left to train.
    expect(killed.resumedFrom).toEqual(killed.kills.filter((k) => k.committed > 0).map((k) => k.committed));
    expect(killed.result.resumedFrom).toBe(EPOCHS);
    // Two stalls fail a BullMQ job; the resubmitted run carried on from its checkpoints.
    expect(killed.failures.every((f) => f === "job stalled more than allowable limit")).toBe(true);

    // Epoch counter and history: 1..N once each, each commit marker written once (no epoch redone
    // after it was committed).
    expect(killed.result.epochs).toBe(EPOCHS);
    expect(killed.result.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(commits).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1 });

    // Same losses and scores every epoch (data order, dropout, optimizer continued), same weights and
    // Adam state at the end, same best epoch and test report.
    for (const [metric, diff] of Object.entries(history)) expect(diff, metric).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.weights).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.optimizerSlots).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.iterations[1]).toBe(ckpt.iterations[0]);
    expect(ckpt.betaPowers[1]).toEqual(ckpt.betaPowers[0]);
    expect(killed.result.best).toEqual(straight.best);
    expect(killed.result.test.scores.greedy).toEqual(straight.test.scores.greedy);
    expect(killed.result.test.scores.model).toEqual(straight.test.scores.model);
  });
});
