/**
 * The one place that says how encoder features are shaped before the caption model, the retrieval
 * index and the confidence score see them. The trainer fits it on the training split and stores it in
 * every checkpoint's config; the caption workers (online and bulk), `capflow eval` and the retrieval
 * baseline read it back from the model and apply it with `applyFeatureTransform`, so no caller can
 * shape features its own way.
 *
 * `sqrt-l2`: signed square root, L2 normalisation, times `scale`. InceptionV3's pooled features reach
 * the model raw with norms 0.8–8.9 and 74% zeros on the demo set (issue 13), while the retrieval
 * baseline compares directions (cosine); the square root damps the few large activations (power
 * normalisation) and the unit norm removes the image-to-image scale. `scale` = √dim gives entries of
 * unit mean square, the range the model's glorot-initialised image layer was built for (measured in
 * docs/quality.md, "Feature transform").
 */
import { z } from "zod";

export const FeatureTransform = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("none") }),
  z.object({
    kind: z.literal("sqrt-l2"),
    dim: z.number().int().positive(),
    scale: z.number().positive(),
  }),
]);
export type FeatureTransform = z.infer<typeof FeatureTransform>;
export type FeatureTransformKind = FeatureTransform["kind"];

export const IDENTITY_TRANSFORM: FeatureTransform = { kind: "none" };

/**
 * Fits a transform of `kind` to training features [n × dim]. `sqrt-l2` needs no statistics beyond the
 * dimension (its scale makes the mean square of an entry 1); the training rows are checked so that a
 * wrong `dim` fails here rather than in a worker.
 */
export function fitFeatureTransform(
  kind: FeatureTransformKind,
  features: Float32Array,
  dim: number,
): FeatureTransform {
  if (!Number.isInteger(dim) || dim < 1 || features.length % dim !== 0)
    throw new Error(`feature transform: ${features.length} values do not make rows of ${dim}`);
  if (kind === "none") return IDENTITY_TRANSFORM;
  return { kind, dim, scale: Math.sqrt(dim) };
}

/** Reads a stored transform; a model saved before transforms existed gets the identity. */
export function featureTransformFromJSON(json: unknown): FeatureTransform {
  if (json === undefined || json === null) return IDENTITY_TRANSFORM;
  const parsed = FeatureTransform.safeParse(json);
  if (!parsed.success) throw new Error(`invalid feature transform: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The transformed copy of `features` [n × dim]; the input is left as it is. */
export function applyFeatureTransform(t: FeatureTransform, features: Float32Array): Float32Array {
  if (t.kind === "none") return features.slice();
  const { dim, scale } = t;
  if (features.length % dim !== 0)
    throw new Error(`feature transform: ${features.length} values do not make rows of ${dim}`);
  const out = new Float32Array(features.length);
  for (let i = 0; i < features.length; i += dim) {
    let ss = 0;
    for (let k = 0; k < dim; k++) {
      const x = features[i + k]!;
      const r = Math.sign(x) * Math.sqrt(Math.abs(x));
      out[i + k] = r;
      ss += r * r;
    }
    // An all-zero row stays zero rather than becoming NaN.
    const f = ss > 0 ? scale / Math.sqrt(ss) : 0;
    for (let k = 0; k < dim; k++) out[i + k]! *= f;
  }
  return out;
}

/** Cosine similarity of two rows (of any scale). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k]! * b[k]!;
    na += a[k]! * a[k]!;
    nb += b[k]! * b[k]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
