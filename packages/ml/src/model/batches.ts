/**
 * Turning in-memory (image, caption) pairs into training batches for both methods. Pure functions:
 * no tfjs, so the data side is testable and cheap.
 */
import { PAD_ID } from "../text/vocabulary.ts";
import type { PrefixBatch, TeacherBatch } from "./caption-model.ts";

/** Captions as token rows (`<start> … <end>`, right-padded with 0 to `width`), each tied to an image. */
export interface CaptionSet {
  /** [numImages × featureDim] */
  features: Float32Array;
  featureDim: number;
  /** [numCaptions × width] */
  tokens: Int32Array;
  width: number;
  /** Image row of each caption. */
  imageOf: Int32Array;
}

export function numCaptions(set: CaptionSet): number {
  return set.imageOf.length;
}

/** Non-pad length of caption `i` (`<start>` and `<end>` included). */
export function captionLength(set: CaptionSet, i: number): number {
  let n = 0;
  for (let j = 0; j < set.width; j++) if (set.tokens[i * set.width + j] !== PAD_ID) n = j + 1;
  return n;
}

function copyFeatures(set: CaptionSet, images: ArrayLike<number>): Float32Array {
  const F = set.featureDim;
  const out = new Float32Array(images.length * F);
  for (let k = 0; k < images.length; k++) {
    const img = images[k]!;
    out.set(set.features.subarray(img * F, (img + 1) * F), k * F);
  }
  return out;
}

/** A teacher-forcing batch of the given captions, trimmed to their longest. */
export function teacherBatch(set: CaptionSet, captions: readonly number[]): TeacherBatch {
  let width = 2;
  for (const i of captions) width = Math.max(width, captionLength(set, i));
  const tokens = new Int32Array(captions.length * width);
  captions.forEach((i, k) =>
    tokens.set(set.tokens.subarray(i * set.width, i * set.width + width), k * width),
  );
  return {
    method: "teacher",
    features: copyFeatures(
      set,
      captions.map((i) => set.imageOf[i]!),
    ),
    tokens,
    size: captions.length,
    width,
  };
}

/** One (caption, position) pair per tutorial sample: predict token `pos` from tokens [0, pos). */
export interface PrefixSample {
  caption: number;
  pos: number;
}

/** Every prefix sample of the given captions, in caption order (the tutorial's `create_sequences`). */
export function prefixSamples(set: CaptionSet, captions: readonly number[]): PrefixSample[] {
  const out: PrefixSample[] = [];
  for (const caption of captions) {
    const len = captionLength(set, caption);
    for (let pos = 1; pos < len; pos++) out.push({ caption, pos });
  }
  return out;
}

/** A prefix batch: each prefix left-padded with 0 to `maxLength` (Keras `pad_sequences` default). */
export function prefixBatch(
  set: CaptionSet,
  samples: readonly PrefixSample[],
  maxLength: number,
): PrefixBatch {
  const prefixes = new Int32Array(samples.length * maxLength);
  const targets = new Int32Array(samples.length);
  samples.forEach(({ caption, pos }, k) => {
    const row = set.tokens.subarray(caption * set.width, caption * set.width + pos);
    prefixes.set(row.subarray(Math.max(0, pos - maxLength)), k * maxLength + Math.max(0, maxLength - pos));
    targets[k] = set.tokens[caption * set.width + pos]!;
  });
  return {
    method: "prefix",
    features: copyFeatures(
      set,
      samples.map((s) => set.imageOf[s.caption]!),
    ),
    prefixes,
    targets,
    size: samples.length,
  };
}
