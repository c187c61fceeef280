import { describe, expect, it } from "vitest";
import { decodeNpy, encodeNpy, fromFloat16, toFloat16 } from "./npy.ts";

describe("npy", () => {
  it("writes a numpy v1.0 header aligned to 64 bytes", () => {
    const buf = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3);
    expect(buf.subarray(1, 6).toString("latin1")).toBe("NUMPY");
    const headerLen = buf.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(buf.subarray(10, 10 + headerLen).toString("latin1")).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/,
    );
    expect(buf.length).toBe(10 + headerLen + 24);
  });

  it("round-trips float32 exactly and float16 within half precision", () => {
    const values = new Float32Array([0, -0.5, 1.25, 3.14159, -2048.5, 1e-3, 65504, 0.1]);
    const back = decodeNpy(encodeNpy(values, 2, 4));
    expect(back).toMatchObject({ rows: 2, cols: 4, dtype: "float32" });
    expect(Array.from(back.data)).toEqual(Array.from(values));
    const half = decodeNpy(encodeNpy(values, 4, 2, "float16"));
    expect(half.dtype).toBe("float16");
    half.data.forEach((v, i) => expect(v).toBeCloseTo(values[i]!, Math.abs(values[i]!) > 100 ? -1 : 2));
  });

  it("rounds to nearest even in float16 and keeps specials", () => {
    expect(Array.from(toFloat16(new Float32Array([1, -2, 0.5, Infinity, -Infinity, 70000])))).toEqual([
      0x3c00, 0xc000, 0x3800, 0x7c00, 0xfc00, 0x7c00,
    ]);
    expect(Number.isNaN(fromFloat16(toFloat16(new Float32Array([NaN])))[0])).toBe(true);
    // 1 + 2^-11 is exactly between two halves: ties go to the even one (1.0).
    expect(toFloat16(new Float32Array([1 + 2 ** -11]))[0]).toBe(0x3c00);
  });

  it("decodes halves exactly: subnormals, the largest finite, signed zero and infinities", () => {
    const halves = Uint16Array.from([0x3c00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0xfc00, 0x7c00, 0xc000]);
    expect(Array.from(fromFloat16(halves))).toEqual([
      1,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      65504,
      -0,
      -Infinity,
      Infinity,
      -2,
    ]);
    expect(Object.is(fromFloat16(Uint16Array.from([0x8000]))[0], -0)).toBe(true);
  });
});
