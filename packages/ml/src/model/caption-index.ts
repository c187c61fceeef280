/**
 * The training images' features (after the model's feature transform) and captions, shipped with a
 * published model. It serves three things, all from the same cosine nearest-neighbour search:
 * - the retrieval baseline (the nearest training image's first caption);
 * - retrieval re-ranking: the captions of the k nearest training images are candidates that the
 *   model scores (retrieval-rerank.ts);
 * - confidence: how close an image is to anything the model was trained on. The similarity is mapped
 *   to a probability that the caption names the image exactly by a logistic curve fitted on the
 *   validation split, and images below a similarity threshold chosen on validation are flagged
 *   `outOfDomain` (real photos get emoji names otherwise, with log-probabilities no lower than emoji's).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { getJson, putJson, type ObjectStore } from "@capflow/common";
import { FeatureTransform } from "./feature-transform.ts";

export const Calibration = z.object({
  /** confidence = 1 / (1 + exp(-(a + b · similarity))) */
  a: z.number(),
  b: z.number(),
  /** Images whose nearest training image is less similar than this are out of domain. */
  oodThreshold: z.number(),
  /** How the threshold was chosen, e.g. "5% quantile of 300 validation images' similarity". */
  rule: z.string(),
});
export type Calibration = z.infer<typeof Calibration>;

export const CaptionIndexMeta = z.object({
  version: z.literal(1),
  images: z.number().int().nonnegative(),
  dim: z.number().int().positive(),
  /** The cleaned captions of each training image (words joined by spaces), first = its name. */
  captions: z.array(z.array(z.string())),
  transform: FeatureTransform,
  calibration: Calibration,
  /** sha256 of features.bin. */
  sha256: z.string(),
});
export type CaptionIndexMeta = z.infer<typeof CaptionIndexMeta>;

export interface Neighbour {
  index: number;
  similarity: number;
}

export class CaptionIndex {
  private readonly unit: Float32Array;
  readonly count: number;

  constructor(
    /** [count × dim] transformed training features (any scale: rows are normalised here). */
    features: Float32Array,
    readonly dim: number,
    readonly captions: readonly (readonly string[])[],
    public calibration: Calibration = UNCALIBRATED,
  ) {
    this.count = features.length / dim;
    if (!Number.isInteger(this.count) || this.count !== captions.length)
      throw new Error(
        `caption index: ${features.length} values with dim ${dim} for ${captions.length} images`,
      );
    this.unit = unitRows(features, dim);
  }

  /** The `k` most similar training images of each of the `n` query rows, best first. */
  nearest(queries: Float32Array, n: number, k = 1): Neighbour[][] {
    const q = unitRows(queries, this.dim);
    const D = this.dim;
    const out: Neighbour[][] = [];
    for (let i = 0; i < n; i++) {
      const best: Neighbour[] = [];
      for (let j = 0; j < this.count; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[i * D + d]! * this.unit[j * D + d]!;
        if (best.length < k || dot > best[best.length - 1]!.similarity) {
          best.push({ index: j, similarity: dot });
          best.sort((a, b) => b.similarity - a.similarity);
          if (best.length > k) best.pop();
        }
      }
      out.push(best);
    }
    return out;
  }

  confidence(similarity: number): number {
    const { a, b } = this.calibration;
    return 1 / (1 + Math.exp(-(a + b * similarity)));
  }

  outOfDomain(similarity: number): boolean {
    return similarity < this.calibration.oodThreshold;
  }

  /** The training features as stored: unit rows. */
  get vectors(): Float32Array {
    return this.unit;
  }
}

/** Before calibration: confidence is the similarity itself squashed, nothing is out of domain. */
export const UNCALIBRATED: Calibration = { a: 0, b: 1, oodThreshold: -Infinity, rule: "uncalibrated" };

/**
 * Fits the confidence curve and the out-of-domain threshold on validation images: `similarity` of each
 * to its nearest training image, `correct` whether its caption named it exactly. The logistic curve is
 * fitted by Newton's method (two parameters, a small ridge keeps it finite when one class is empty);
 * the threshold is the `percentile` of the validation similarities, so that about that share of
 * in-domain images is flagged. 5% by default, the usual 95% coverage of in-domain images: at the 2%
 * quantile the demo's model flagged 10 of 12 photographs; at 5% it flags 11 of 12 and 8% of the
 * clean test style (a nearest-neighbour study on the demo's features, docs/quality.md).
 */
export function calibrate(
  similarity: readonly number[],
  correct: readonly boolean[],
  percentile = 0.05,
): Calibration {
  if (similarity.length === 0) return UNCALIBRATED;
  let a = 0;
  let b = 0;
  const ridge = 1e-3;
  for (let iter = 0; iter < 50; iter++) {
    let ga = -ridge * a;
    let gb = -ridge * b;
    let haa = ridge;
    let hab = 0;
    let hbb = ridge;
    similarity.forEach((s, i) => {
      const p = 1 / (1 + Math.exp(-(a + b * s)));
      const y = correct[i] ? 1 : 0;
      ga += y - p;
      gb += (y - p) * s;
      const w = p * (1 - p);
      haa += w;
      hab += w * s;
      hbb += w * s * s;
    });
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a += da;
    b += db;
    if (Math.abs(da) + Math.abs(db) < 1e-9) break;
  }
  const sorted = [...similarity].sort((x, y) => x - y);
  const oodThreshold = sorted[Math.floor(percentile * (sorted.length - 1))]!;
  return {
    a,
    b,
    oodThreshold,
    rule: `${+(percentile * 100).toFixed(1)}% quantile of ${sorted.length} validation images' similarity`,
  };
}

function unitRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[i + k]! * x[i + k]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) out[i + k] = x[i + k]! * inv;
  }
  return out;
}

/** `<prefix>index.json` + `<prefix>features.bin` (little-endian float32, unit rows). */
export async function saveCaptionIndex(
  store: ObjectStore,
  prefix: string,
  index: CaptionIndex,
  transform: FeatureTransform,
): Promise<void> {
  const v = index.vectors;
  const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  await store.put(`${prefix}features.bin`, bytes);
  const meta: CaptionIndexMeta = {
    version: 1,
    images: index.count,
    dim: index.dim,
    captions: index.captions.map((c) => [...c]),
    transform,
    calibration: index.calibration,
    sha256: createHash("sha256").update(bytes).digest("hex"),
  };
  // JSON has no -Infinity: an uncalibrated threshold is written as the lowest possible cosine.
  await putJson(store, `${prefix}index.json`, {
    ...meta,
    calibration: { ...meta.calibration, oodThreshold: Math.max(-1, meta.calibration.oodThreshold) },
  });
}

export async function loadCaptionIndex(
  store: ObjectStore,
  prefix: string,
): Promise<{ index: CaptionIndex; transform: FeatureTransform }> {
  const parsed = CaptionIndexMeta.safeParse(await getJson(store, `${prefix}index.json`));
  if (!parsed.success) throw new Error(`caption index ${prefix}: ${z.prettifyError(parsed.error)}`);
  const meta = parsed.data;
  const body = await store.get(`${prefix}features.bin`);
  if (createHash("sha256").update(body).digest("hex") !== meta.sha256)
    throw new Error(`caption index ${prefix}: features.bin does not match index.json (tampered or torn)`);
  if (body.byteLength !== meta.images * meta.dim * 4)
    throw new Error(
      `caption index ${prefix}: features.bin has ${body.byteLength} bytes, expected ${meta.images * meta.dim * 4}`,
    );
  const copy = new Uint8Array(body.byteLength);
  copy.set(body);
  const features = new Float32Array(copy.buffer);
  return {
    index: new CaptionIndex(features, meta.dim, meta.captions, meta.calibration),
    transform: meta.transform,
  };
}
