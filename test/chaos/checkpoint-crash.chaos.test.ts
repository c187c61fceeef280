import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { LocalStore, S3Store, keys, type ObjectStore } from "@capflow/common";
import { committedEpochs, latestCheckpoint } from "@capflow/trainer";
import { s3StoreOptions, tempDir } from "../support/services.ts";
import { rng } from "../support/fault/bad-images.ts";
import { CHAOS_SCALE, chaosSeed, chaosSize, replay } from "../support/fault/chaos-config.ts";

const CHILD = path.resolve(import.meta.dirname, "../support/fault/checkpoint-child.ts");
const LOCAL_KILLS = chaosSize("CAPFLOW_CHAOS_CHECKPOINT_KILLS", { full: 30, ci: 8 });
const S3_KILLS = chaosSize("CAPFLOW_CHAOS_CHECKPOINT_S3_KILLS", { full: 20, ci: 6 });
const SEED = chaosSeed(12);

/**
 * Starts the checkpointing child and SIGKILLs it once it has saved one epoch, `fraction` of that
 * epoch's save time later (so mostly inside the next epoch's upload). Kills follow the child's own
 * progress, not the clock: a fixed 0–1.2 s let an S3 child on a loaded machine commit nothing in 6
 * kills, and lets one on idle local disk save ~13 epochs between kills. Returns the epoch time seen
 * and whether the kill landed inside a save (the child's last line was `saving N`).
 */
async function runAndKill(
  storeSpec: object,
  runId: string,
  fraction: number,
): Promise<{ epochMs: number; insideSave: boolean }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(storeSpec), runId], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((r) => child.once("exit", r));
  let out = "";
  const epochMs = await new Promise<number>((resolve, reject) => {
    let readyAt = 0;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!readyAt && out.includes("ready\n")) readyAt = Date.now();
      if (readyAt && /saved \d+\n/.test(out)) resolve(Date.now() - readyAt);
    });
    void exited.then(() => reject(new Error(`checkpoint child exited before saving an epoch:\n${out}`)));
  });
  await new Promise((r) => setTimeout(r, Math.floor(fraction * epochMs)));
  child.kill("SIGKILL");
  const insideSave = /saving \d+\n$/.test(out);
  await exited;
  return { epochMs, insideSave };
}

async function killManyTimes(store: ObjectStore, storeSpec: object, kills: number) {
  const runId = `run-${randomUUID().slice(0, 8)}`;
  const random = rng(SEED);
  const seeded = replay(SEED);
  let torn = 0;
  const reasons: string[] = [];
  let lastEpoch = 0;
  const epochMs: number[] = [];
  let cutUploads = 0;
  let insideSave = 0;
  for (let k = 0; k < kills; k++) {
    // Somewhere in the upload of the next epoch (one epoch is ~3 MB in 9 files), now and then after it.
    const kill = await runAndKill(storeSpec, runId, random() * 1.2);
    epochMs.push(kill.epochMs);
    if (kill.insideSave) insideSave++;
    const skipped: string[] = [];
    const latest = await latestCheckpoint(store, runId, (epoch, why) => skipped.push(`${epoch}: ${why}`));
    const committed = await committedEpochs(store, runId);
    torn += skipped.length;
    reasons.push(...skipped);
    // What the kill hit: files of the next epoch without its commit marker are a torn checkpoint that
    // the next load must pass over (a kill inside the first file leaves none: puts are atomic).
    let partial = 0;
    for await (const _ of store.list(keys.runEpoch(runId, (committed[0] ?? 0) + 1))) partial++;
    if (partial > 0) cutUploads++;
    if (committed.length === 0) continue;
    // The newest commit marker names a complete checkpoint, and that is the one loaded.
    const at = `kill ${k + 1}; ${seeded}`;
    expect(skipped, at).toEqual([]);
    expect(latest?.epoch, at).toBe(committed[0]);
    const e = latest!.epoch;
    expect(e, at).toBeGreaterThanOrEqual(lastEpoch);
    lastEpoch = e;
    for (const w of [...latest!.weights, ...latest!.optimizer.slots])
      expect(
        w.data.every((x) => x === e),
        at,
      ).toBe(true);
    expect(latest!.optimizer.iterations, at).toBe(e * 10);
    expect(latest!.vocab.tokens[1], at).toBe(`e${e}`);
  }
  const medianEpochMs = epochMs.sort((a, b) => a - b)[epochMs.length >> 1]!;
  const atEnd = `${insideSave} of ${kills} kills inside a save, ${cutUploads} left a torn epoch, ${lastEpoch} epochs; ${seeded}`;
  // Every kill came after its child saved an epoch, so each one moved the run forward.
  expect(lastEpoch, atEnd).toBeGreaterThanOrEqual(kills);
  // The child does nothing but save, so nearly every kill lands inside one (CI size, 2026-12-01: 8 of 8
  // local, 6 of 6 S3).
  expect(insideSave, atEnd).toBeGreaterThanOrEqual(Math.ceil((kills * 2) / 3));
  // About a third of the kills left files of a torn epoch behind for the next load to pass over
  // (3, 2, 3 of 8 local and 3, 3, 1 of 6 S3 in three CI-size runs): with 20 kills or more, a run where
  // none did never showed a load a torn checkpoint (odds ~0.65^20). At CI size that is only reported:
  // 0 of 6 has odds ~7%.
  if (kills >= 20) expect(cutUploads, atEnd).toBeGreaterThanOrEqual(1);
  return { lastEpoch, torn, reasons, cutUploads, insideSave, medianEpochMs };
}

describe("checkpoint crash consistency (docs/reliability.md test 12)", () => {
  it("always resumes from the newest complete checkpoint when the trainer is killed mid-upload (local store)", async () => {
    const dir = await tempDir("ckpt");
    const r = await killManyTimes(new LocalStore(dir), { kind: "local", dir }, LOCAL_KILLS);
    console.info(
      `checkpoint kills (local): ${LOCAL_KILLS}, ${r.insideSave} inside a save, ${r.cutUploads} left a torn epoch, epochs committed ${r.lastEpoch}, ` +
        `median epoch save ${r.medianEpochMs} ms, torn loads 0 (skipped ${r.torn}: ${JSON.stringify(r.reasons)}), ` +
        `seed ${SEED}, scale ${CHAOS_SCALE}`,
    );
  });

  it("does the same on the S3-protocol store", async () => {
    const opts = s3StoreOptions();
    const store = new S3Store(opts);
    try {
      const r = await killManyTimes(store, { kind: "s3", ...opts }, S3_KILLS);
      console.info(
        `checkpoint kills (s3): ${S3_KILLS}, ${r.insideSave} inside a save, ${r.cutUploads} left a torn epoch, epochs committed ${r.lastEpoch}, ` +
          `median epoch save ${r.medianEpochMs} ms, torn loads 0 (skipped ${r.torn}: ${JSON.stringify(r.reasons)}), ` +
          `seed ${SEED}, scale ${CHAOS_SCALE}`,
      );
    } finally {
      await store.close();
    }
  });
});
