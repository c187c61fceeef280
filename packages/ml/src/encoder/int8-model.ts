// The int8 InceptionV3: calibrated on the shipped calibration set, quantised by ./int8-quantise.ts,
// and accepted only when its features agree with the fp32 encoder's on held-out images.
import * as ort from "onnxruntime-node";
import { calibrate } from "./calibrate.ts";
import { calibrationBatches, calibrationImages } from "./calibration-images.ts";
import { rowCosines, summariseCosines } from "./cosine-stats.ts";
import { quantiseModel } from "./int8-quantise.ts";
import { IMAGE_SIZE, type EncoderLogger, type EncoderQuality } from "./types.ts";

/** Bumped whenever the quantisation recipe changes, so a new recipe gets a new encoder id. */
export const INT8_RECIPE = "int8v1";
/** The int8 encoder's id: features from it are never mixed with the fp32 encoder's. */
export const int8EncoderId = (fp32Id: string): string => `${fp32Id}-${INT8_RECIPE}`;

/**
 * Calibration images: 32 was enough on this model (16 already gave mean cosine 0.9977, p1 0.988 on
 * 32 held-out images, docs/benchmarks.md); each costs one fp32 run with ~100 tensors kept as outputs.
 */
export const CALIBRATION_IMAGES = 32;
/** Held-out images start here in the calibration set's order, far past the calibration images. */
export const HOLDOUT_FROM = 2000;
export const DEFAULT_GATE_IMAGES = 500;
/** The gate: cosine(int8, fp32) over the held-out images. */
export const GATE_MIN_MEAN = 0.995;
export const GATE_MIN_P1 = 0.98;

export interface Int8BuildOptions {
  inputName: string;
  outputName: string;
  threads: number;
  /** Held-out images compared (default 500; CAPFLOW_INT8_GATE_IMAGES). */
  gateImages?: number;
  log: EncoderLogger;
  id: string;
  fp32Id: string;
}

export class QualityGateError extends Error {}

/** Quantises the fp32 model and checks it; throws QualityGateError with the figures when it fails the gate. */
export async function buildInt8Model(
  fp32: Uint8Array,
  opts: Int8BuildOptions,
): Promise<{ bytes: Uint8Array; quality: EncoderQuality }> {
  const t0 = performance.now();
  const calib = await calibrationImages(0, CALIBRATION_IMAGES);
  const ranges = await calibrate(fp32, calib, { inputName: opts.inputName, threads: opts.threads });
  const q = quantiseModel(fp32, ranges, {
    format: "qdq",
    metadata: { encoder_id: opts.id, quantised_from: opts.fp32Id, quantisation: INT8_RECIPE },
  });
  opts.log.info("int8 model quantised", {
    encoder: opts.id,
    convs: q.convs,
    tensors: q.tensors,
    calibrationImages: calib.length,
    ms: Math.round(performance.now() - t0),
  });
  const quality = await compareWithFp32(fp32, q.bytes, opts);
  opts.log.info("int8 quality gate", {
    encoder: opts.id,
    ...quality,
    minMean: GATE_MIN_MEAN,
    minP1: GATE_MIN_P1,
  });
  if (!(quality.mean >= GATE_MIN_MEAN && quality.p1 >= GATE_MIN_P1)) {
    throw new QualityGateError(
      `int8 encoder ${opts.id} fails the quality gate: cosine with fp32 on ${quality.n} held-out images ` +
        `mean ${quality.mean.toFixed(4)} (need ≥ ${GATE_MIN_MEAN}), p1 ${quality.p1.toFixed(4)} (need ≥ ${GATE_MIN_P1})`,
    );
  }
  return { bytes: q.bytes, quality };
}

async function compareWithFp32(
  fp32: Uint8Array,
  int8: Uint8Array,
  opts: Int8BuildOptions,
): Promise<EncoderQuality> {
  const so: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  };
  const a = await ort.InferenceSession.create(fp32, so);
  const b = await ort.InferenceSession.create(int8, so);
  const cos: number[] = [];
  const n = opts.gateImages ?? DEFAULT_GATE_IMAGES;
  try {
    for await (const batch of calibrationBatches(HOLDOUT_FROM, n, 8)) {
      const x = new Float32Array(batch.length * batch[0]!.length);
      batch.forEach((im, i) => x.set(im, i * im.length));
      const feats = async (s: ort.InferenceSession): Promise<Float32Array> => {
        const input = new ort.Tensor("float32", x, [batch.length, IMAGE_SIZE, IMAGE_SIZE, 3]);
        const out = await s.run({ [opts.inputName]: input });
        const t = out[opts.outputName];
        if (!t) throw new Error(`output ${opts.outputName} missing`);
        const d = (t.data as Float32Array).slice();
        t.dispose();
        input.dispose();
        return d;
      };
      const fa = await feats(a);
      const fb = await feats(b);
      cos.push(...rowCosines(fa, fb, fa.length / batch.length));
    }
  } finally {
    await a.release();
    await b.release();
  }
  const s = summariseCosines(cos);
  return { against: opts.fp32Id, n: s.n, mean: s.mean, p1: s.p1, min: s.min };
}
