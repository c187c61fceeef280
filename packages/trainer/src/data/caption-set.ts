import type { CaptionSet, Vocabulary } from "@capflow/ml";

/** Every caption of every image as token rows tied to its image: what both training methods consume. */
export function toCaptionSet(
  features: Float32Array,
  dim: number,
  cleaned: readonly (readonly string[][])[],
  vocab: Vocabulary,
  maxLength: number,
): CaptionSet {
  const rows: Int32Array[] = [];
  const imageOf: number[] = [];
  cleaned.forEach((caps, image) => {
    for (const tokens of caps) {
      if (tokens.length === 0) continue;
      rows.push(vocab.encode(tokens, maxLength));
      imageOf.push(image);
    }
  });
  const tokens = new Int32Array(rows.length * maxLength);
  rows.forEach((r, i) => tokens.set(r, i * maxLength));
  return { features, featureDim: dim, tokens, width: maxLength, imageOf: Int32Array.from(imageOf) };
}
