// Activation ranges for static quantisation: the float graph is run on calibration images with every
// tensor the quantiser will scale (./int8-quantise.ts `quantisedTensors`) exposed as an output.
import * as ort from "onnxruntime-node";
import { quantisedTensors, withObservedOutputs, type Range } from "./int8-quantise.ts";
import { IMAGE_SIZE } from "./types.ts";

export interface CalibrateOptions {
  inputName: string;
  threads: number;
  /** One image's dims without the batch (default 299×299×3 NHWC). */
  imageDims?: number[];
}

/** Per-tensor min and max over all calibration images. */
export async function calibrate(
  floatModel: Uint8Array,
  images: readonly Float32Array[],
  { inputName, threads, imageDims = [IMAGE_SIZE, IMAGE_SIZE, 3] }: CalibrateOptions,
): Promise<Map<string, Range>> {
  const tensors = quantisedTensors(floatModel);
  const session = await ort.InferenceSession.create(withObservedOutputs(floatModel, tensors), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
  const ranges = new Map<string, Range>(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
  try {
    for (const img of images) {
      // One image at a time: ~200 tensors are kept alive as outputs, ~100 MB an image.
      const input = new ort.Tensor("float32", img, [1, ...imageDims]);
      const out = await session.run({ [inputName]: input }, tensors);
      for (const t of tensors) {
        const v = out[t];
        if (!v) throw new Error(`calibration output ${t} missing`);
        const data = v.data as Float32Array;
        const r = ranges.get(t)!;
        let lo = r.min;
        let hi = r.max;
        for (let i = 0; i < data.length; i++) {
          const x = data[i]!;
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
        r.min = lo;
        r.max = hi;
        v.dispose();
      }
      input.dispose();
    }
  } finally {
    await session.release();
  }
  return ranges;
}
