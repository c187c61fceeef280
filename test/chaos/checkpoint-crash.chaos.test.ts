import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { LocalStore, S3Store, type ObjectStore } from "@capflow/common";
import { committedEpochs, latestCheckpoint } from "@capflow/trainer";
import { s3StoreOptions, tempDir } from "../support/services.ts";
import { rng } from "../support/fault/bad-images.ts";

const CHILD = path.resolve(import.meta.dirname, "../support/fault/checkpoint-child.ts");

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
  const random = rng(12);
  let torn = 0;
  let lastEpoch = 0;
  for (let k = 0; k < kills; k++) {
    // Somewhere in the uploads of the next epochs (one epoch is ~3 MB in 9 files).
    await runAndKill(storeSpec, runId, Math.floor(random() * 1200));
    const skipped: string[] = [];
    const latest = await latestCheckpoint(store, runId, (epoch, why) => skipped.push(`${epoch}: ${why}`));
    const committed = await committedEpochs(store, runId);
    torn += skipped.length;
    if (committed.length === 0) continue;
    // The newest commit marker names a complete checkpoint, and that is the one loaded.
    expect(latest?.epoch).toBe(committed[0]);
    const e = latest!.epoch;
    expect(e).toBeGreaterThanOrEqual(lastEpoch);
    lastEpoch = e;
    for (const w of [...latest!.weights, ...latest!.optimizer.slots])
      expect(w.data.every((x) => x === e)).toBe(true);
    expect(latest!.optimizer.iterations).toBe(e * 10);
    expect(latest!.vocab.tokens[1]).toBe(`e${e}`);
    expect(skipped).toEqual([]);
  }
  return { lastEpoch, torn };
}

describe("checkpoint crash consistency (docs/reliability.md test 12)", () => {
  it("always resumes from the newest complete checkpoint when the trainer is killed mid-upload (local store)", async () => {
    const dir = await tempDir("ckpt");
    const { lastEpoch, torn } = await killManyTimes(new LocalStore(dir), { kind: "local", dir }, 30);
    console.info(
      `checkpoint kills (local): 30, epochs committed ${lastEpoch}, torn loads 0 (skipped ${torn})`,
    );
    expect(lastEpoch).toBeGreaterThan(5);
  });

  it("does the same on the S3-protocol store", async () => {
    const opts = s3StoreOptions();
    const store = new S3Store(opts);
    try {
      const { lastEpoch } = await killManyTimes(store, { kind: "s3", ...opts }, 20);
      console.info(`checkpoint kills (s3): 20, epochs committed ${lastEpoch}`);
      expect(lastEpoch).toBeGreaterThan(2);
    } finally {
      await store.close();
    }
  });
});
