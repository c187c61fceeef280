/**
 * Kernels registered on top of tfjs-backend-wasm 4.22 so that training runs there at all, and fast.
 *
 * - `UnsortedSegmentSum` (the gradient of `gather`, i.e. of an Embedding) is missing on wasm; tfjs then
 *   falls back to nothing and the step fails. The pure-JS cpu backend's version is O(segments × rows):
 *   64 s for one batch of 32 at vocab 2000 (docs/architecture.md, "Compute backend"). A plain scatter-add takes ~3 ms.
 * - wasm's `BatchMatMul`/`_FusedMatMul` use XNNPACK only when neither operand is transposed; every
 *   backward-pass matmul (`xᵀ·dy`, `dy·Wᵀ`) falls to a scalar triple loop, and the stock fused matmul
 *   returns wrong values (errors up to 45 against the cpu backend) when an operand is transposed and a
 *   bias or relu is fused. We materialise the transpose with wasm's own `Transpose` kernel and call the
 *   untransposed fast path: 3.5–5× faster training, and correct.
 */
import type * as tfjs from "@tensorflow/tfjs";

type Tf = typeof tfjs;
type TensorInfo = tfjs.TensorInfo;
type DataId = TensorInfo["dataId"];

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackendLike {
  readSync(dataId: DataId): tfjs.backend_util.BackendValues;
  makeOutput(
    shape: number[],
    dtype: tfjs.DataType,
    memoryOffset?: number,
    values?: tfjs.backend_util.BackendValues,
  ): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}
type KernelFn = (args: KernelArgs) => TensorInfo | TensorInfo[];

const BACKEND = "wasm";
const patched = new WeakSet<object>();

/** Register the fast/correct kernels on the wasm backend. Idempotent per tfjs instance. */
export function registerWasmKernels(tf: Tf): void {
  if (patched.has(tf)) return;
  registerUnsortedSegmentSum(tf);
  const transpose = tf.getKernel("Transpose", BACKEND);
  if (!transpose)
    throw new Error("wasm backend has no Transpose kernel; is @tensorflow/tfjs-backend-wasm loaded?");
  const transposeFn = transpose.kernelFunc as unknown as KernelFn;
  for (const name of ["BatchMatMul", "_FusedMatMul"]) {
    wrapMatMul(tf, name, transposeFn);
  }
  patched.add(tf);
}

function registerUnsortedSegmentSum(tf: Tf): void {
  if (tf.getKernel("UnsortedSegmentSum", BACKEND)) tf.unregisterKernel("UnsortedSegmentSum", BACKEND);
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName: BACKEND,
    kernelFunc: ((args: KernelArgs): TensorInfo => {
      const backend = args.backend as WasmBackendLike;
      const x = args.inputs.x;
      const ids = args.inputs.segmentIds;
      if (!x || !ids) throw new Error("UnsortedSegmentSum needs inputs x and segmentIds");
      const numSegments = Number(args.attrs?.numSegments);
      const xs = backend.readSync(x.dataId) as Float32Array | Int32Array;
      const seg = backend.readSync(ids.dataId) as Int32Array | Float32Array;
      const inner = x.shape.slice(ids.shape.length);
      let innerSize = 1;
      for (const d of inner) innerSize *= d;
      const out =
        x.dtype === "int32"
          ? new Int32Array(numSegments * innerSize)
          : new Float32Array(numSegments * innerSize);
      for (let r = 0; r < seg.length; r++) {
        const s = seg[r]!;
        // TensorFlow drops rows whose segment id is negative or out of range.
        if (s < 0 || s >= numSegments) continue;
        const src = r * innerSize;
        const dst = s * innerSize;
        for (let k = 0; k < innerSize; k++) out[dst + k]! += xs[src + k]!;
      }
      return backend.makeOutput([numSegments, ...inner], x.dtype, undefined, out);
    }) as unknown as tfjs.KernelFunc,
  });
}

function wrapMatMul(tf: Tf, name: string, transposeFn: KernelFn): void {
  const original = tf.getKernel(name, BACKEND);
  if (!original) throw new Error(`wasm backend has no ${name} kernel`);
  const inner = original.kernelFunc as unknown as KernelFn;
  const materialise = (x: TensorInfo, backend: unknown): TensorInfo => {
    const r = x.shape.length;
    const perm = [...Array(r - 2).keys(), r - 1, r - 2];
    return transposeFn({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
  };
  tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({
    ...original,
    kernelFunc: ((args: KernelArgs) => {
      const attrs = args.attrs ?? {};
      const { transposeA, transposeB } = attrs as { transposeA?: boolean; transposeB?: boolean };
      if (!transposeA && !transposeB) return inner(args);
      const backend = args.backend as WasmBackendLike;
      const temps: TensorInfo[] = [];
      const inputs = { ...args.inputs };
      if (transposeA && inputs.a) temps.push((inputs.a = materialise(inputs.a, backend)));
      if (transposeB && inputs.b) temps.push((inputs.b = materialise(inputs.b, backend)));
      try {
        return inner({ ...args, inputs, attrs: { ...attrs, transposeA: false, transposeB: false } });
      } finally {
        for (const t of temps) backend.disposeData(t.dataId);
      }
    }) as unknown as tfjs.KernelFunc,
  });
}
