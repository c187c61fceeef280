/**
 * NumPy `.npy` v1.0 writer/reader for 2-d little-endian float matrices, so shards open with
 * `numpy.load`. The header is padded so the data starts on a 64-byte boundary, as numpy does.
 */
export type NpyDtype = "float32" | "float16";

const DESCR: Record<NpyDtype, string> = { float32: "<f4", float16: "<f2" };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);

export function encodeNpy(
  data: Float32Array,
  rows: number,
  cols: number,
  dtype: NpyDtype = "float32",
): Buffer {
  if (data.length !== rows * cols) throw new Error(`npy: ${data.length} values for a ${rows}x${cols} matrix`);
  return Buffer.concat([npyHeader(rows, cols, dtype), npyBody(data, dtype)]);
}

/**
 * The header alone: with the row count known up front, a matrix of any size is written as this
 * followed by {@link npyBody} chunks, never held whole (`capflow export`).
 */
export function npyHeader(rows: number, cols: number, dtype: NpyDtype = "float32"): Buffer {
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const unpadded = MAGIC.length + 2 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const head = Buffer.alloc(MAGIC.length + 2);
  MAGIC.copy(head);
  head.writeUInt16LE(header.length, MAGIC.length);
  return Buffer.concat([head, Buffer.from(header, "latin1")]);
}

/** Rows of a matrix as `.npy` data bytes (little-endian, C order); float32 is a view, not a copy. */
export function npyBody(data: Float32Array, dtype: NpyDtype = "float32"): Buffer {
  return dtype === "float32"
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(toFloat16(data).buffer);
}

export function decodeNpy(buf: Buffer): { data: Float32Array; rows: number; cols: number; dtype: NpyDtype } {
  if (!buf.subarray(0, 6).equals(MAGIC.subarray(0, 6))) throw new Error("npy: bad magic");
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString("latin1");
  const descr = /'descr': '([^']+)'/.exec(header)?.[1];
  const shape = /'shape': \((\d+), (\d+)\)/.exec(header);
  if (!shape || !descr) throw new Error(`npy: unsupported header ${header}`);
  const rows = Number(shape[1]);
  const cols = Number(shape[2]);
  const start = 10 + headerLen;
  const bytes = buf.subarray(start);
  if (descr === "<f4") {
    const copy = new Float32Array(rows * cols);
    Buffer.from(copy.buffer).set(bytes.subarray(0, rows * cols * 4));
    return { data: copy, rows, cols, dtype: "float32" };
  }
  if (descr === "<f2") {
    const half = new Uint16Array(rows * cols);
    Buffer.from(half.buffer).set(bytes.subarray(0, rows * cols * 2));
    return { data: fromFloat16(half), rows, cols, dtype: "float16" };
  }
  throw new Error(`npy: unsupported dtype ${descr}`);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half precision, round to nearest even. */
export function toFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >> 13);
    const rem = mant & 0x1fff;
    // Rounding may carry into the exponent (and up to infinity): that is the right answer.
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

/** Half → single precision of one 16-bit pattern, by the IEEE 754 formula. */
function halfToSingle(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  return exp === 0
    ? sign * 2 ** -14 * (mant / 1024)
    : exp === 0x1f
      ? mant
        ? NaN
        : sign * Infinity
      : sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/**
 * Every half's value, computed once (256 KiB): decoding a float16 shard was the largest cost of
 * `capflow export` (17% of its CPU profile with the formula per element).
 */
let HALVES: Float32Array | undefined;

export function fromFloat16(src: Uint16Array): Float32Array {
  const table = (HALVES ??= Float32Array.from({ length: 0x10000 }, (_, h) => halfToSingle(h)));
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}
