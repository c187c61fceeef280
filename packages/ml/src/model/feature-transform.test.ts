import { describe, expect, it } from "vitest";
import {
  applyFeatureTransform,
  featureTransformFromJSON,
  fitFeatureTransform,
  IDENTITY_TRANSFORM,
} from "./feature-transform.ts";

// Two rows of 4: ReLU-like features (non-negative, some zero) of different scales, and an all-zero row.
const raw = Float32Array.of(4, 0, 1, 9, 0.04, 0, 0.01, 0.09, 0, 0, 0, 0);

describe("feature transform", () => {
  it("gives rows of norm scale = √dim after the signed square root, whatever the input scale", () => {
    const t = fitFeatureTransform("sqrt-l2", raw, 4);
    expect(t).toEqual({ kind: "sqrt-l2", dim: 4, scale: 2 });
    const x = applyFeatureTransform(t, raw);
    const norm = (i: number) => Math.hypot(...x.subarray(i * 4, i * 4 + 4));
    expect(norm(0)).toBeCloseTo(2, 5);
    expect(norm(1)).toBeCloseTo(2, 5);
    // Square roots of 4, 0, 1, 9 = 2, 0, 1, 3 (norm √14), times 2 / √14; the second row is the same direction.
    expect(Array.from(x.subarray(0, 4))).toEqual(
      [2, 0, 1, 3].map((v) => expect.closeTo((v * 2) / Math.sqrt(14), 5)),
    );
    expect(Array.from(x.subarray(4, 8))).toEqual(
      Array.from(x.subarray(0, 4)).map((v) => expect.closeTo(v, 5)),
    );
    expect(Array.from(x.subarray(8))).toEqual([0, 0, 0, 0]);
    expect(raw[0]).toBe(4); // the input is left alone
  });

  it("round-trips through JSON (as stored in a checkpoint) to the same output", () => {
    const t = fitFeatureTransform("sqrt-l2", raw, 4);
    const back = featureTransformFromJSON(JSON.parse(JSON.stringify(t)));
    expect(back).toEqual(t);
    expect(applyFeatureTransform(back, raw)).toEqual(applyFeatureTransform(t, raw));
  });

  it("reads a model saved before transforms as the identity, and refuses a malformed one", () => {
    expect(featureTransformFromJSON(undefined)).toEqual(IDENTITY_TRANSFORM);
    expect(applyFeatureTransform(IDENTITY_TRANSFORM, raw)).toEqual(raw);
    expect(() => featureTransformFromJSON({ kind: "sqrt-l2", dim: 4 })).toThrow(/feature transform/);
    expect(() => fitFeatureTransform("sqrt-l2", raw, 5)).toThrow(/rows of 5/);
  });

  it("keeps the sign of negative features", () => {
    const t = fitFeatureTransform("sqrt-l2", Float32Array.of(-4, 0), 2);
    expect(Array.from(applyFeatureTransform(t, Float32Array.of(-4, 0)))).toEqual(
      [-Math.SQRT2, 0].map((v) => expect.closeTo(v, 5)),
    );
  });
});
