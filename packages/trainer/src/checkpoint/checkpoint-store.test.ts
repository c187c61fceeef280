import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { keys, LocalStore, registry, type ObjectStore } from "@capflow/common";
import { latestCheckpoint, saveCheckpoint, type Checkpoint } from "./checkpoint-store.ts";

const store = async () => new LocalStore(await fs.mkdtemp(path.join(os.tmpdir(), "ckpt-")));

function checkpoint(epoch: number): Checkpoint {
  return {
    runId: "run-a",
    epoch,
    weights: [{ name: "w", shape: [2, 2], data: Float32Array.from([1, 2, 3, epoch]) }],
    optimizer: {
      iterations: epoch * 10,
      beta1Power: 0.9 ** epoch,
      beta2Power: 0.999 ** epoch,
      slots: [{ name: "w/m", shape: [2, 2], data: new Float32Array(4).fill(epoch) }],
    },
    vocab: {
      textVersion: 2,
      minCount: 1,
      maxSize: null,
      tokens: ["<pad>", "<start>", "<end>", "<unk>", "dog"],
      counts: [0, 0, 0, 0, 3],
    },
    config: { model: { maxLength: 8 } },
    history: [],
  };
}

describe("checkpoints", () => {
  it("round-trips weights, optimizer state and vocabulary", async () => {
    const s = await store();
    await saveCheckpoint(s, checkpoint(1));
    const back = await latestCheckpoint(s, "run-a");
    expect(back?.epoch).toBe(1);
    expect(Array.from(back!.weights[0]!.data)).toEqual([1, 2, 3, 1]);
    expect(back!.optimizer.iterations).toBe(10);
    expect(Array.from(back!.optimizer.slots[0]!.data)).toEqual([1, 1, 1, 1]);
    expect(back!.vocab.tokens).toContain("dog");
  });

  it("skips a checkpoint without its commit marker (killed mid-upload) for the previous one", async () => {
    const s = await store();
    await saveCheckpoint(s, checkpoint(1));
    await saveCheckpoint(s, checkpoint(2));
    await s.delete(`${keys.runEpoch("run-a", 2)}COMMIT.json`);
    expect((await latestCheckpoint(s, "run-a"))?.epoch).toBe(1);
  });

  it("skips a torn checkpoint whose files do not match the marker, and says why", async () => {
    const s = await store();
    await saveCheckpoint(s, checkpoint(1));
    await saveCheckpoint(s, checkpoint(2));
    const bin = `${keys.runEpoch("run-a", 2)}weights.bin`;
    await s.put(bin, (await s.get(bin)).subarray(0, 5));
    const skipped: string[] = [];
    const latest = await latestCheckpoint(s, "run-a", (epoch, why) => skipped.push(`${epoch}: ${why}`));
    expect(latest?.epoch).toBe(1);
    expect(skipped).toEqual([expect.stringMatching(/^2: .*weights\.bin does not match its commit marker/)]);
  });

  it("skips an epoch the store cannot read (a 5xx after the store's retries) loudly, and counts it", async () => {
    const s = await store();
    await saveCheckpoint(s, checkpoint(1));
    await saveCheckpoint(s, checkpoint(2));
    const serverError = Object.assign(new Error("We encountered an internal error. Please try again."), {
      name: "InternalError",
    });
    const failing: ObjectStore = Object.assign(Object.create(s) as ObjectStore, {
      get: (key: string) =>
        key.startsWith(keys.runEpoch("run-a", 2)) ? Promise.reject(serverError) : s.get(key),
    });
    const before = await skippedCount("unreadable");
    const skipped: string[] = [];
    const latest = await latestCheckpoint(failing, "run-a", (epoch, why, reason) =>
      skipped.push(`${epoch} ${reason}: ${why}`),
    );
    expect(latest?.epoch).toBe(1);
    expect(skipped).toEqual([expect.stringMatching(/^2 unreadable: .*InternalError: We encountered/)]);
    expect(await skippedCount("unreadable")).toBe(before + 1);
  });

  it("names a missing file and an unparsable marker as such", async () => {
    const s = await store();
    for (const e of [1, 2, 3]) await saveCheckpoint(s, checkpoint(e));
    await s.delete(`${keys.runEpoch("run-a", 3)}vocab.json`);
    await s.put(`${keys.runEpoch("run-a", 2)}COMMIT.json`, "{");
    const reasons: string[] = [];
    const latest = await latestCheckpoint(s, "run-a", (epoch, _why, reason) =>
      reasons.push(`${epoch} ${reason}`),
    );
    expect(latest?.epoch).toBe(1);
    expect(reasons).toEqual(["3 missing", "2 invalid"]);
  });

  it("throws when the run's checkpoints cannot even be listed (rather than restart the run from scratch)", async () => {
    const s = await store();
    await saveCheckpoint(s, checkpoint(1));
    const down: ObjectStore = Object.assign(Object.create(s) as ObjectStore, {
      list: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("connect ECONNREFUSED")) }),
      }),
    });
    await expect(latestCheckpoint(down, "run-a")).rejects.toThrow(/ECONNREFUSED/);
  });

  it("has nothing to resume from when no epoch committed", async () => {
    const s = await store();
    expect(await latestCheckpoint(s, "run-a")).toBeUndefined();
  });
});

async function skippedCount(reason: string): Promise<number> {
  const m = await registry.getSingleMetric("capflow_trainer_checkpoints_skipped_total")!.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
