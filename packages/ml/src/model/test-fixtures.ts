// Shared by the model's unit tests: a small config and a tiny caption set to train it on.
import type { CaptionSet } from "./batches.ts";
import type { CaptionModelConfigInput } from "./caption-model.ts";

export const small: CaptionModelConfigInput = {
  vocabSize: 12,
  maxLength: 8,
  featureDim: 16,
  embedDim: 8,
  units: 16,
  seed: 7,
};

/** Three images, four captions over ids 4..11 (0 pad, 1 start, 2 end); caption i < 3 is of image i. */
export function tinySet(): CaptionSet {
  const width = 8;
  const rows = [
    [1, 4, 5, 6, 2],
    [1, 7, 8, 2],
    [1, 9, 10, 11, 4, 2],
    [1, 4, 8, 2],
  ];
  const tokens = new Int32Array(rows.length * width);
  rows.forEach((r, i) => tokens.set(r, i * width));
  const features = new Float32Array(3 * 16);
  for (let i = 0; i < features.length; i++) features[i] = Math.sin(i * 1.7) * 0.8;
  return { features, featureDim: 16, tokens, width, imageOf: Int32Array.from([0, 1, 2, 0]) };
}
