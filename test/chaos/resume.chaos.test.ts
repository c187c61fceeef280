import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore } from "@capflow/common";
import { rng } from "@capflow/trainer";
import { preparePublishedModel } from "../support/pipeline.ts";
import { tempDir, testEnv } from "../support/services.ts";
import { CHAOS_SCALE, chaosSeed, chaosSize, replay } from "../support/fault/chaos-config.ts";
import {
  CHECKPOINT_FILES,
  compareCheckpoints,
  compareHistories,
  TrainingRig,
  type KillPlanner,
  type KillStep,
} from "../support/fault/training-run.ts";

const EPOCHS = chaosSize("CAPFLOW_CHAOS_RESUME_EPOCHS", { full: 10, ci: 6 });
// CI: 5 kills over 5 epochs let the run end before the 4th kill (seen); 4 over 6 leave room.
const KILLS = chaosSize("CAPFLOW_CHAOS_RESUME_KILLS", { full: 12, ci: 4 });
// The training run's seed (data order, dropout) and the kill plan's seed (CAPFLOW_CHAOS_SEED).
const SEED = Number(process.env.CAPFLOW_CHAOS_RESUME_SEED ?? 13);
const PLAN_SEED = chaosSeed(SEED);
// Kills that found the run's job held by a trainer: ≥ 3 of 12 at full size, the same share at others.
const MIN_HELD = Math.ceil((3 * KILLS) / 12);
const TOLERANCE = 1e-6;

/**
 * Random faults, each aimed at the run's next epoch or the one after (while epochs to spare remain, so
 * that every fault hits before the run ends): mid-epoch at a random fraction, before a random
 * checkpoint file (the commit marker included), right after the commit marker, at a random delay of
 * up to 1.5 epochs once training, or while the trainer starts. Each round of five has every kind, in a
 * random order.
 */
function randomPlan(seed: number, kills: number, epochs: number, epochMs: number): KillPlanner {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const kinds: KillStep["kind"][] = [];
  while (kinds.length < kills) {
    const round: KillStep["kind"][] = ["mid-epoch", "checkpoint-upload", "after-commit", "random", "startup"];
    while (round.length) kinds.push(round.splice(Math.floor(random() * round.length), 1)[0]!);
  }
  return ({ committed, kills: done }) => {
    if (done >= kills) return undefined;
    const spare = epochs - committed - (kills - done);
    const epoch = committed + 1 + (spare > 0 && random() < 0.5 ? 1 : 0);
    switch (kinds[done]!) {
      case "mid-epoch":
        return { kind: "mid-epoch", epoch, fraction: 0.1 + 0.8 * random() };
      case "checkpoint-upload":
        return { kind: "checkpoint-upload", epoch, beforeFile: pick(CHECKPOINT_FILES) };
      case "after-commit":
        return { kind: "after-commit", epoch };
      case "random":
        return { kind: "random", delayMs: Math.round(random() * 1.5 * epochMs) };
      case "startup":
        return { kind: "startup", delayMs: Math.round(random() * 4000) };
      default:
        return undefined;
    }
  };
}

// docs/reliability.md test 13, chaos size: the tutorial's prefix method (one sample per caption prefix,
// shuffled across captions), 10 epochs, 12 random kills.
describe("resume correctness under random kills (docs/reliability.md test 13)", () => {
  let rig: TrainingRig;

  beforeAll(async () => {
    const storeDir = path.join(await tempDir("resume-chaos"), "store");
    const { encoder } = await preparePublishedModel(new LocalStore(storeDir), { images: 48, epochs: 1 });
    rig = new TrainingRig(storeDir, testEnv(), {
      dataset: "drawn",
      encoderId: encoder.id,
      method: "prefix",
      epochs: EPOCHS,
      seed: SEED,
      batchSize: 32,
      learningRate: 0.005,
      minWordCount: 1,
      model: { embedDim: 16, units: 32, dropout: 0.5 },
      beamWidth: 2,
    });
  });
  afterAll(() => rig?.close());

  it(`a trainer killed ${KILLS} times at random points resumes to the straight run's losses and weights`, async () => {
    const t0 = Date.now();
    const straight = await rig.straight("straight", 300_000);
    const t1 = Date.now();
    const epochMs = (straight.history.reduce((s, h) => s + h.seconds, 0) / EPOCHS) * 1000;
    const killed = await rig.withKills("killed", randomPlan(PLAN_SEED, KILLS, EPOCHS, epochMs), 900_000);
    const t2 = Date.now();
    const history = compareHistories(straight.history, killed.result.history);
    const ckpt = await compareCheckpoints(rig.store, "straight", "killed");
    const byKind: Record<string, number> = {};
    for (const k of killed.kills) byKind[k.observed] = (byKind[k.observed] ?? 0) + 1;
    console.info(
      `resume (chaos, seed ${PLAN_SEED}, scale ${CHAOS_SCALE}): ${killed.kills.length} kills by kind ${JSON.stringify(byKind)} ` +
        `${JSON.stringify(killed.kills.map((k) => `${k.planned}→${k.observed}@${k.committed}`))}, ` +
        `resubmits ${killed.resubmits}, trainer starts ${killed.trainerStarts}, resumed from ${killed.resumedFrom}, ` +
        `max diff history ${JSON.stringify(history)} weights ${ckpt.weights} adam ${ckpt.optimizerSlots}; ` +
        `straight ${(t1 - t0) / 1000} s, killed ${(t2 - t1) / 1000} s`,
    );

    const seeded = replay(PLAN_SEED);
    expect(killed.kills.length, seeded).toBe(KILLS);
    expect(killed.kills.filter((k) => k.heldJob).length, seeded).toBeGreaterThanOrEqual(MIN_HELD);
    // Resumes only ever go forward, each from a checkpoint a kill left as the newest.
    const points = new Set(killed.kills.map((k) => k.committed));
    for (const [i, e] of killed.resumedFrom.entries()) {
      expect(points.has(e), `resumed from ${e}; ${seeded}`).toBe(true);
      if (i > 0) expect(e, seeded).toBeGreaterThanOrEqual(killed.resumedFrom[i - 1]!);
    }
    expect(
      killed.failures.every((f) => f === "job stalled more than allowable limit"),
      seeded,
    ).toBe(true);

    const epochs = Array.from({ length: EPOCHS }, (_, i) => i + 1);
    expect(killed.result.epochs, seeded).toBe(EPOCHS);
    expect(
      killed.result.history.map((h) => h.epoch),
      seeded,
    ).toEqual(epochs);
    expect(await rig.commitCounts("killed", killed.kills), seeded).toEqual(
      Object.fromEntries(epochs.map((e) => [e, 1])),
    );

    for (const [metric, diff] of Object.entries(history))
      expect(diff, `${metric}; ${seeded}`).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.weights, seeded).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.optimizerSlots, seeded).toBeLessThanOrEqual(TOLERANCE);
    expect(ckpt.iterations[1], seeded).toBe(ckpt.iterations[0]);
    expect(ckpt.betaPowers[1], seeded).toEqual(ckpt.betaPowers[0]);
    expect(killed.result.best, seeded).toEqual(straight.best);
    expect(killed.result.test.scores.greedy, seeded).toEqual(straight.test.scores.greedy);
  });
});
