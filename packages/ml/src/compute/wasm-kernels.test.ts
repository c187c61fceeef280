import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { loadTf, type Tf } from "./backend.ts";

let tf: Tf;

beforeAll(async () => {
  ({ tf } = await loadTf({ backend: "wasm" }));
});

function rand(n: number, seed: number): Float32Array {
  // Small LCG: the inputs are fixed across runs.
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Run `f` on `backend` and return its values; the active backend is restored afterwards. */
async function on(backend: string, f: () => import("@tensorflow/tfjs").Tensor): Promise<Float32Array> {
  const before = tf.getBackend();
  await tf.setBackend(backend);
  try {
    const t = f();
    const v = (await t.data()) as Float32Array;
    t.dispose();
    return v;
  } finally {
    await tf.setBackend(before);
  }
}

function expectClose(actual: Float32Array, expected: Float32Array, rel = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    if (err > rel * Math.max(1, scale))
      throw new Error(`element ${i}: ${actual[i]} vs ${expected[i]} (err ${err})`);
  }
}

describe("wasm kernels", () => {
  it("runs on the wasm backend here", () => {
    expect(tf.getBackend()).toBe("wasm");
  });

  it("UnsortedSegmentSum matches the cpu backend, dropping out-of-range ids", async () => {
    const rows = 50;
    const inner = 7;
    const xs = rand(rows * inner, 1);
    const ids = Int32Array.from({ length: rows }, (_, i) => (i * 7) % 13);
    ids[3] = -1;
    ids[4] = 99;
    const f = () => tf.unsortedSegmentSum(tf.tensor2d(xs, [rows, inner]), tf.tensor1d(ids, "int32"), 13);
    expectClose(await on("wasm", f), await on("cpu", f));
  });

  it("the Embedding gradient (gather → UnsortedSegmentSum) matches the cpu backend", async () => {
    const table = rand(20 * 5, 2);
    const idx = Int32Array.from({ length: 30 }, (_, i) => (i * 3) % 20);
    const f = () =>
      tf.grad((t: import("@tensorflow/tfjs").Tensor) =>
        tf.gather(t, tf.tensor1d(idx, "int32")).square().sum(),
      )(tf.tensor2d(table, [20, 5]));
    expectClose(await on("wasm", f), await on("cpu", f));
  });

  const combos = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const;
  for (const [ta, tb] of combos) {
    for (const batch of [0, 3]) {
      it(`matMul transposeA=${ta} transposeB=${tb} batch=${batch || "none"} matches cpu`, async () => {
        const [m, k, n] = [9, 17, 6];
        const lead = batch ? [batch] : [];
        const aShape = [...lead, ...(ta ? [k, m] : [m, k])];
        const bShape = [...lead, ...(tb ? [n, k] : [k, n])];
        const a = rand(
          aShape.reduce((x, y) => x * y, 1),
          3,
        );
        const b = rand(
          bShape.reduce((x, y) => x * y, 1),
          4,
        );
        const f = () => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb);
        expectClose(await on("wasm", f), await on("cpu", f));
      });
    }
    for (const activation of ["linear", "relu"] as const) {
      for (const withBias of [false, true]) {
        it(`fused matMul transposeA=${ta} transposeB=${tb} bias=${withBias} ${activation} matches cpu`, async () => {
          const [m, k, n] = [8, 33, 12];
          const a = rand(m * k, 5);
          const b = rand(k * n, 6);
          const bias = rand(n, 7);
          const f = () =>
            tf.fused.matMul({
              a: tf.tensor2d(a, ta ? [k, m] : [m, k]),
              b: tf.tensor2d(b, tb ? [n, k] : [k, n]),
              transposeA: ta,
              transposeB: tb,
              ...(withBias ? { bias: tf.tensor1d(bias) } : {}),
              activation,
            });
          expectClose(await on("wasm", f), await on("cpu", f));
        });
      }
    }
  }

  it("a fused matmul's gradients match the cpu backend", async () => {
    const a = rand(8 * 16, 8);
    const b = rand(16 * 4, 9);
    const f = () => {
      const [ga, gb] = tf.grads(
        (x: import("@tensorflow/tfjs").Tensor, w: import("@tensorflow/tfjs").Tensor) =>
          tf.fused
            .matMul({
              a: x as import("@tensorflow/tfjs").Tensor2D,
              b: w as import("@tensorflow/tfjs").Tensor2D,
              bias: tf.ones([4]),
              activation: "relu",
            })
            .sum(),
      )([tf.tensor2d(a, [8, 16]), tf.tensor2d(b, [16, 4])]);
      return tf.concat([ga!.flatten(), gb!.flatten()]);
    };
    expectClose(await on("wasm", f), await on("cpu", f));
  });

  it("leaks no tensors or wasm buffers across transposed matmuls", () => {
    const x = tf.randomNormal([5, 4]);
    const y = tf.randomNormal([6, 4]);
    const before = tf.memory();
    tf.matMul(x, y, false, true).dispose();
    tf.fused
      .matMul({
        a: x as import("@tensorflow/tfjs").Tensor2D,
        b: y as import("@tensorflow/tfjs").Tensor2D,
        transposeB: true,
        activation: "relu",
      })
      .dispose();
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    x.dispose();
    y.dispose();
  });

  it("stock wasm runs single-threaded under Node", async () => {
    const loaded = await loadTf({ backend: "wasm" });
    expect(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")).toBe(false);
    expect(loaded.threads).toBe(1);
  });
});

describe("loadTf", () => {
  const root = fileURLToPath(new URL("../../../../", import.meta.url));
  const backendModule = fileURLToPath(new URL("./backend.ts", import.meta.url));
  const run = (env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const { loadTf } = await import(${JSON.stringify(backendModule)});
         try { const l = await loadTf(); console.log("KIND=" + l.kind); }
         catch (e) { console.log("ERROR=" + e.message); process.exitCode = 3; }`,
      ],
      { cwd: root, env: { ...process.env, ...env }, encoding: "utf8" },
    );

  it("CAPFLOW_TF_BACKEND=tensorflow fails here with the reason and the fixes", () => {
    const r = run({ CAPFLOW_TF_BACKEND: "tensorflow" });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toContain("Cannot find module '@tensorflow/tfjs-node'");
    expect(r.stdout).toContain("TFJS_NODE_BASE_URI");
    expect(r.stdout).toContain("CAPFLOW_TF_BACKEND=wasm");
  });

  it("auto picks wasm on this machine (no native tfjs installed)", () => {
    const r = run({ CAPFLOW_TF_BACKEND: "auto" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("KIND=wasm");
  });

  it("rejects an unknown CAPFLOW_TF_BACKEND listing the choices", () => {
    const r = run({ CAPFLOW_TF_BACKEND: "gpu" });
    expect(r.stdout).toContain("choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu");
  });

  it("returns the same promise on repeated calls", () => {
    expect(loadTf({ backend: "wasm" })).toBe(loadTf({ backend: "wasm" }));
  });
});
