import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { LocalStore, S3Store, type ObjectStore } from "@capflow/common";
import { committedEpochs, latestCheckpoint } from "@capflow/trainer";
import { s3StoreOptions, tempDir } from "../support/services.ts";
import { rng } from "../support/fault/bad-images.ts";
import { CHAOS_SCALE, chaosSeed, chaosSize, replay } from "../support/fault/chaos-config.ts";

const CHILD = path.resolve(import.meta.dirname, "../support/fault/checkpoint-child.ts");
const LOCAL_KILLS = chaosSize("CAPFLOW_CHAOS_CHECKPOINT_KILLS", { full: 30, ci: 8 });
const S3_KILLS = chaosSize("CAPFLOW_CHAOS_CHECKPOINT_S3_KILLS", { full: 20, ci: 6 });
const SEED = chaosSeed(12);

/** Starts the checkpointing child, SIGKILLs it `ms` after it resumed, returns once it is gone. */
async function runAndKill(storeSpec: object, runId: string, ms: number): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(storeSpec), runId], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((r) => child.once("exit", r));
  await new Promise<void>((resolve) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready\n")) resolve();
    });
    void exited.then(() => resolve());
  });
  await new Promise((r) => setTimeout(r, ms));
  child.kill("SIGKILL");
  await exited;
}

async function killManyTimes(store: ObjectStore, storeSpec: object, kills: number) {
  const runId = `run-${randomUUID().slice(0, 8)}`;
  const random = rng(SEED);
  const seeded = replay(SEED);
  let torn = 0;
  const reasons: string[] = [];
  let lastEpoch = 0;
  for (let k = 0; k < kills; k++) {
    // Somewhere in the uploads of the next epochs (one epoch is ~3 MB in 9 files).
    await runAndKill(storeSpec, runId, Math.floor(random() * 1200));
    const skipped: string[] = [];
    const latest = await latestCheckpoint(store, runId, (epoch, why) => skipped.push(`${epoch}: ${why}`));
    const committed = await committedEpochs(store, runId);
    torn += skipped.length;
    reasons.push(...skipped);
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
  return { lastEpoch, torn, reasons };
}

// Progress bounds: the run must get somewhere between kills (full size: > 5 epochs over 30 kills on
// the local store, > 2 over 20 on S3; the same rates at any other size).
describe("checkpoint crash consistency (docs/reliability.md test 12)", () => {
  it("always resumes from the newest complete checkpoint when the trainer is killed mid-upload (local store)", async () => {
    const dir = await tempDir("ckpt");
    const { lastEpoch, torn, reasons } = await killManyTimes(
      new LocalStore(dir),
      { kind: "local", dir },
      LOCAL_KILLS,
    );
    console.info(
      `checkpoint kills (local): ${LOCAL_KILLS}, epochs committed ${lastEpoch}, torn loads 0 ` +
        `(skipped ${torn}: ${JSON.stringify(reasons)}), seed ${SEED}, scale ${CHAOS_SCALE}`,
    );
    expect(lastEpoch, replay(SEED)).toBeGreaterThan(Math.floor((5 * LOCAL_KILLS) / 30));
  });

  it("does the same on the S3-protocol store", async () => {
    const opts = s3StoreOptions();
    const store = new S3Store(opts);
    try {
      const { lastEpoch, torn, reasons } = await killManyTimes(store, { kind: "s3", ...opts }, S3_KILLS);
      console.info(
        `checkpoint kills (s3): ${S3_KILLS}, epochs committed ${lastEpoch}, torn loads 0 ` +
          `(skipped ${torn}: ${JSON.stringify(reasons)}), seed ${SEED}, scale ${CHAOS_SCALE}`,
      );
      expect(lastEpoch, replay(SEED)).toBeGreaterThan(Math.floor((2 * S3_KILLS) / 20));
    } finally {
      await store.close();
    }
  });
});
