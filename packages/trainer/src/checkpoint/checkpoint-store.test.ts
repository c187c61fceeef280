import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { keys, LocalStore } from "@capflow/common";
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

  it("has nothing to resume from when no epoch committed", async () => {
    const s = await store();
    expect(await latestCheckpoint(s, "run-a")).toBeUndefined();
  });
});
