import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { keys, LocalStore, type ObjectStore } from "@capflow/common";
import {
  buildVocabulary,
  createCaptionModel,
  encodeWeights,
  loadTf,
  publishModel,
  type Encoder,
  type Tf,
} from "@capflow/ml";
import { Captioner, type CaptionerOptions } from "./captioner.ts";

const DIM = 16;
const ENCODER: Encoder = {
  id: "test-encoder",
  dim: DIM,
  runtime: "onnx",
  backend: "none",
  encode: () => Promise.reject(new Error("decode-only tests encode nothing")),
  dispose: () => Promise.resolve(),
};

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh local store with a small random model published as "default" (checkpoint epoch `epoch`). */
async function publishTiny(store: ObjectStore, epoch: number, seed: number): Promise<void> {
  const vocab = buildVocabulary([["a", "b", "c", "d", "e", "f", "g", "h"]], { minCount: 1 });
  const model = createCaptionModel(tf, {
    vocabSize: vocab.size,
    maxLength: 8,
    featureDim: DIM,
    embedDim: 8,
    units: 16,
    seed,
  });
  const weights = encodeWeights(model.getWeights());
  model.dispose();
  const dir = keys.runEpoch("run-1", epoch);
  const files: Record<string, Uint8Array | string> = {
    "weights.bin": weights.data,
    "weights.json": JSON.stringify(weights.specs),
    "vocab.json": JSON.stringify(vocab.toJSON()),
    "config.json": JSON.stringify({ model: { maxLength: 8, featureDim: DIM, embedDim: 8, units: 16, seed } }),
  };
  const commit: { files: Record<string, string> } = { files: {} };
  for (const [name, body] of Object.entries(files)) {
    await store.put(dir + name, body);
    commit.files[name] = createHash("sha256").update(body).digest("hex");
  }
  await store.put(`${dir}COMMIT.json`, JSON.stringify(commit));
  await publishModel(store, "default", { runId: "run-1", epoch, encoderId: ENCODER.id, cider: 0 });
}

async function freshStore(): Promise<ObjectStore> {
  const dir = await mkdtemp(path.join(tmpdir(), "captioner-test-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new LocalStore(dir);
  await publishTiny(store, 1, 1);
  return store;
}

function captioner(store: ObjectStore, extra: Partial<CaptionerOptions> = {}): Captioner {
  const c = new Captioner({
    store,
    tf,
    log: pino({ level: "silent" }),
    encoder: ENCODER,
    maxBatch: 4,
    maxWaitMs: 5,
    ...extra,
  });
  cleanups.push(() => c.dispose());
  return c;
}

const rows = (n: number) => new Float32Array(n * DIM).map((_, i) => Math.sin(i * 0.77));

describe("Captioner decoding", () => {
  it("decodes on ONNX Runtime by default, with the captions of the tfjs runtime", async () => {
    const store = await freshStore();
    const onnx = captioner(store);
    const tfjs = captioner(store, { decoder: { runtime: "tfjs" } });
    const a = await onnx.holder("default").acquire();
    const b = await tfjs.holder("default").acquire();
    cleanups.push(
      () => a.release(),
      () => b.release(),
    );
    expect(a.loaded.decoder.runtime).toBe("onnx");
    expect(b.loaded.decoder.runtime).toBe("tfjs");
    for (const req of [
      { method: "greedy" as const, beamWidth: 3 },
      { method: "beam" as const, beamWidth: 3 },
      { method: "greedy" as const, beamWidth: 3, maxLength: 4 },
    ]) {
      // 6 rows through a micro-batcher of 4: two batches.
      const got = await onnx.decode(a.loaded, rows(6), 6, req);
      const want = await tfjs.decode(b.loaded, rows(6), 6, req);
      expect(got.map((g) => g.caption)).toEqual(want.map((w) => w.caption));
      expect(got.filter((g) => g.caption !== "").length).toBeGreaterThan(3);
      got.forEach((g, i) => expect(Math.abs(g.logProb - want[i]!.logProb)).toBeLessThan(1e-4));
    }
  });

  it("disposes a retired model's decoder when its last lease ends, not before", async () => {
    const store = await freshStore();
    const c = captioner(store);
    const holder = c.holder("default");
    const lease = await holder.acquire();
    const first = lease.loaded.version;
    await publishTiny(store, 2, 4);
    await holder.refresh();
    expect(holder.version).not.toBe(first);
    // Still leased: the old model keeps decoding.
    await expect(
      c.decode(lease.loaded, rows(1), 1, { method: "greedy", beamWidth: 1 }),
    ).resolves.toHaveLength(1);
    lease.release();
    await expect(lease.loaded.decoder.greedyDecode(rows(1), 1)).rejects.toThrow(/disposed/);
  });

  it("decodes on tfjs, with a warning, when the ONNX decoder cannot be built", async () => {
    const store = await freshStore();
    const lines: string[] = [];
    const c = captioner(store, {
      log: pino({ level: "warn" }, { write: (s: string) => void lines.push(s) }),
      decoder: { executionProviders: ["npu"] },
    });
    const lease = await c.holder("default").acquire();
    cleanups.push(() => lease.release());
    expect(lease.loaded.decoder.runtime).toBe("tfjs");
    const warning = lines
      .map((l) => JSON.parse(l) as { msg: string; err: string })
      .find((l) => /tfjs/.test(l.msg));
    expect(warning?.err).toMatch(/'npu' is not one of/);
    await expect(
      c.decode(lease.loaded, rows(2), 2, { method: "greedy", beamWidth: 1 }),
    ).resolves.toHaveLength(2);
  });
});
