import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStore } from "@capflow/common";
import { ensureTfBackend } from "./tf-backend.ts";
import { load, type Encoder, type EncoderLogger, type EncoderModelConfig } from "./index.ts";
import { encoderModelFromEnv, EncoderEnv } from "./encoder-env.ts";
import { maxAbsDiff, PIXELS_PER_IMAGE, probeInput } from "./types.ts";

/** A small functional CNN on 299×299×3 with seeded initialisers; `extra` appends layers after the pool. */
function buildModel(seed: number, extra?: (x: tf.SymbolicTensor) => tf.SymbolicTensor): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 100 + s });
  const input = tf.input({ shape: [299, 299, 3], name: "image" });
  let x = tf.layers
    .conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: "valid",
      useBias: false,
      kernelInitializer: init(1),
      name: "c1",
    })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers
    .batchNormalization({
      name: "bn1",
      movingMeanInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 7 }),
      movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 8 }),
      gammaInitializer: tf.initializers.randomUniform({ minval: 0.8, maxval: 1.2, seed: seed + 9 }),
      betaInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 10 }),
    })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: "relu1" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: "pool1" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({
      filters: 16,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(2),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 11 }),
      name: "c2",
    })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .averagePooling2d({ poolSize: 2, strides: 2, padding: "same", name: "pool2" })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
  if (extra) x = extra(x);
  else
    x = tf.layers
      .dense({ units: 5, activation: "softmax", kernelInitializer: init(3), name: "logits" })
      .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

/** Writes model.json + weights.bin (what tensorflowjs_converter / model.save('file://') produce). */
async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const data = a.weightData as ArrayBuffer;
      await writeFile(path.join(dir, "weights.bin"), new Uint8Array(data));
      await writeFile(
        path.join(dir, "model.json"),
        JSON.stringify({
          format: "layers-model",
          generatedBy: a.generatedBy,
          convertedBy: a.convertedBy,
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ["weights.bin"], weights: a.weightSpecs }],
        }),
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
}

describe("custom tfjs encoder model", () => {
  let root: string;
  let modelDir: string;
  const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
  const infos: string[] = [];
  const logger: EncoderLogger = {
    info: (msg) => infos.push(msg),
    warn: (msg, fields) => {
      warnings.push({ msg, fields });
      console.warn(msg, JSON.stringify(fields));
    },
  };
  const open: Encoder[] = [];
  const keep = <E extends Encoder>(e: E): E => (open.push(e), e);
  const probe = probeInput(2, 777);
  /** `model` on the tfjs runtime with this file's logger, disposed after the file. */
  const loadTfjs = async (model: EncoderModelConfig) => keep(await load({ runtime: "tfjs", model, logger }));
  /** The same through the ONNX conversion, one thread, cached under `cacheDir`. */
  const loadOnnx = async (model: EncoderModelConfig, cacheDir: string) =>
    keep(await load({ runtime: "onnx", model, cacheDir, threads: 1, logger }));

  beforeAll(async () => {
    await ensureTfBackend();
    root = await mkdtemp(path.join(tmpdir(), "capflow-custom-encoder-"));
    modelDir = path.join(root, "tiny-cnn");
    const m = buildModel(1);
    await saveModel(m, modelDir);
    m.dispose();
  });

  afterAll(async () => {
    for (const e of open) await e.dispose();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("loads from a path, cut at a named layer (tfjs runtime)", async () => {
    const enc = await loadTfjs({ source: modelDir, layer: "gap" });
    expect(enc.runtime).toBe("tfjs");
    expect(enc.dim).toBe(16);
    expect(enc.id).toMatch(/^tiny-cnn-[0-9a-f]{12}$/);
    const out = await enc.encode(probe, 2);
    expect(out.length).toBe(2 * 16);
    expect(maxAbsDiff(out.subarray(0, 16), out.subarray(16))).toBeGreaterThan(0);
    // Uncut: the softmax output.
    const whole = await loadTfjs({ source: path.join(modelDir, "model.json") });
    expect(whole.dim).toBe(5);
    const p = await whole.encode(probe, 2);
    expect(p[0]! + p[1]! + p[2]! + p[3]! + p[4]!).toBeCloseTo(1, 5);
    // A 4-D cut is flattened.
    const conv = await loadTfjs({ source: modelDir, layer: "pool2" });
    expect(conv.dim).toBe(37 * 37 * 16);
    await expect(
      load({ runtime: "tfjs", model: { source: modelDir, layer: "nope" }, logger }),
    ).rejects.toThrow(/no layer 'nope'.*gap/);
  });

  it("loads from the object store (store:<key>) with the same id and output", async () => {
    const store = new LocalStore(path.join(root, "store"));
    await store.put("models/tiny-cnn/model.json", await readFile(path.join(modelDir, "model.json")));
    await store.put("models/tiny-cnn/weights.bin", await readFile(path.join(modelDir, "weights.bin")));
    const fromStore = keep(
      await load({
        runtime: "tfjs",
        model: { source: "store:models/tiny-cnn/model.json", layer: "gap" },
        store,
        logger,
      }),
    );
    const fromPath = await loadTfjs({ source: modelDir, layer: "gap" });
    expect(fromStore.id).toBe(fromPath.id);
    expect(maxAbsDiff(await fromStore.encode(probe, 2), await fromPath.encode(probe, 2))).toBe(0);
    await expect(load({ runtime: "tfjs", model: { source: "store:models/x/model.json" } })).rejects.toThrow(
      /object store/,
    );
  });

  it("id: stable for the same weights and layer, changes with either; name overrides the folder", async () => {
    const a = await loadTfjs({ source: modelDir, layer: "gap" });
    const a2 = await loadTfjs({ source: modelDir, layer: "gap" });
    const otherLayer = await loadTfjs({ source: modelDir, layer: "pool2" });
    const named = await loadTfjs({ source: modelDir, layer: "gap", name: "my-enc" });
    const m2 = buildModel(2);
    const dir2 = path.join(root, "v2", "tiny-cnn");
    await saveModel(m2, dir2);
    m2.dispose();
    const otherWeights = await loadTfjs({ source: dir2, layer: "gap" });
    expect(a2.id).toBe(a.id);
    expect(otherLayer.id).not.toBe(a.id);
    expect(otherWeights.id).not.toBe(a.id);
    expect(otherWeights.id.startsWith("tiny-cnn-")).toBe(true);
    expect(named.id).toBe(`my-enc-${a.id.slice(-12)}`);
    await expect(load({ runtime: "tfjs", model: { source: modelDir, name: "a/b" } })).rejects.toThrow(
      /letters/,
    );
  });

  it("ONNX conversion agrees with tfjs and is cached by encoder id", async () => {
    const cacheDir = path.join(root, "cache");
    infos.length = 0;
    const onnx = await loadOnnx({ source: modelDir, layer: "gap" }, cacheDir);
    const tfjs = await loadTfjs({ source: modelDir, layer: "gap" });
    expect(onnx.runtime).toBe("onnx");
    expect(onnx.id).toBe(tfjs.id);
    expect(onnx.dim).toBe(16);
    expect(infos).toContain("onnx conversion checked against tfjs");
    expect(existsSync(path.join(cacheDir, `${onnx.id}.onnx`))).toBe(true);
    const diff = maxAbsDiff(await onnx.encode(probe, 2), await tfjs.encode(probe, 2));
    console.log(`custom model ONNX vs tfjs (cut at gap, dim 16): max abs diff ${diff.toExponential(3)}`);
    expect(diff).toBeLessThan(1e-4);
    // A 4-D cut: flattened in NHWC order on both runtimes.
    const onnx4 = await loadOnnx({ source: modelDir, layer: "pool2" }, cacheDir);
    const tfjs4 = await loadTfjs({ source: modelDir, layer: "pool2" });
    expect(onnx4.runtime).toBe("onnx");
    const diff4 = maxAbsDiff(await onnx4.encode(probe, 2), await tfjs4.encode(probe, 2));
    console.log(
      `custom model ONNX vs tfjs (cut at pool2, dim ${onnx4.dim}): max abs diff ${diff4.toExponential(3)}`,
    );
    expect(diff4).toBeLessThan(1e-4);
    // Second load: from the cache, no conversion.
    infos.length = 0;
    const again = await loadOnnx({ source: modelDir, layer: "gap" }, cacheDir);
    expect(infos).not.toContain("onnx conversion checked against tfjs");
    expect(again.dim).toBe(16);
    expect(maxAbsDiff(await again.encode(probe, 2), await onnx.encode(probe, 2))).toBe(0);
  });

  it("an unsupported layer falls back to tfjs with a warning naming it", async () => {
    const m = buildModel(
      3,
      (x) => tf.layers.leakyReLU({ alpha: 0.2, name: "leaky" }).apply(x) as tf.SymbolicTensor,
    );
    const dir = path.join(root, "leaky-cnn");
    await saveModel(m, dir);
    m.dispose();
    warnings.length = 0;
    const enc = keep(
      await load({ runtime: "onnx", model: { source: dir }, cacheDir: path.join(root, "cache"), logger }),
    );
    expect(enc.runtime).toBe("tfjs");
    expect(enc.dim).toBe(16);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/falling back to the tfjs runtime/);
    expect(String(warnings[0]!.fields?.reason)).toMatch(/ONNX conversion failed: .*leaky.*LeakyReLU/);
    expect((await enc.encode(probe, 2)).length).toBe(32);
  });

  it("reads the encoder variables from the environment", () => {
    expect(encoderModelFromEnv(EncoderEnv.parse({}))).toBeUndefined();
    expect(encoderModelFromEnv(EncoderEnv.parse({ CAPFLOW_ENCODER_MODEL: "" }))).toBeUndefined();
    expect(
      encoderModelFromEnv(
        EncoderEnv.parse({
          CAPFLOW_ENCODER_MODEL: "store:enc/model.json",
          CAPFLOW_ENCODER_LAYER: "mixed10",
          CAPFLOW_ENCODER_NAME: "imagenet",
        }),
      ),
    ).toEqual({ source: "store:enc/model.json", layer: "mixed10", name: "imagenet" });
    expect(() => encoderModelFromEnv(EncoderEnv.parse({ CAPFLOW_ENCODER_LAYER: "x" }))).toThrow(
      /CAPFLOW_ENCODER_MODEL/,
    );
    expect(EncoderEnv.safeParse({ CAPFLOW_ENCODER_MODEL: "m", CAPFLOW_ENCODER_NAME: "a b" }).success).toBe(
      false,
    );
    expect(PIXELS_PER_IMAGE).toBe(299 * 299 * 3);
  });
});
