/**
 * The one place a process picks its TensorFlow.js backend (docs/architecture.md, "Compute backend").
 *
 * Order: `@tensorflow/tfjs-node-gpu` (CUDA) → `@tensorflow/tfjs-node` (native CPU) → wasm. The two native
 * packages are optional dependencies whose installers download libtensorflow; offline they are dropped
 * and `require()` throws MODULE_NOT_FOUND, so they are loaded with `createRequire` at run time and a
 * missing one never breaks `import`. `CAPFLOW_TF_BACKEND` forces one.
 */
import { createRequire } from "node:module";
import type * as tfjs from "@tensorflow/tfjs";
import { registerWasmKernels } from "./wasm-kernels.ts";

export type Tf = typeof tfjs;
export type BackendKind = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";
export const BACKEND_KINDS: readonly BackendKind[] = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"];

export interface LoadTfOptions {
  /** Force a backend; default from `CAPFLOW_TF_BACKEND`, else the fastest that loads. */
  backend?: BackendKind | "auto";
  /**
   * wasm threads. Only takes effect with a threaded wasm build: stock tfjs-backend-wasm 4.22 hard-codes
   * multithreading off under Node (tfjs#3830) and its C++ caps threads at half the logical CPUs, so on
   * Node this is always 1. Kept so the knob exists when that changes.
   */
  threads?: number;
}

export interface LoadedTf {
  tf: Tf;
  /** tfjs's backend name: 'tensorflow' (both native builds), 'wasm' or 'cpu'. */
  backend: string;
  kind: BackendKind;
  /** Threads the backend reports (wasm: `getThreadsCount()`), undefined where not known. */
  threads?: number;
  /** Why faster backends were skipped, for the start-up log. */
  skipped: { kind: BackendKind; reason: string }[];
}

const require = createRequire(import.meta.url);

let cached: { key: string; promise: Promise<LoadedTf> } | undefined;

/** Parse `CAPFLOW_TF_BACKEND`; throws on a value that is not one of the choices. */
export function backendFromEnv(value = process.env.CAPFLOW_TF_BACKEND): BackendKind | "auto" {
  if (value === undefined || value === "" || value === "auto") return "auto";
  if ((BACKEND_KINDS as readonly string[]).includes(value)) return value as BackendKind;
  throw new Error(
    `CAPFLOW_TF_BACKEND=${value} is not valid; choose one of auto, ${BACKEND_KINDS.join(", ")}`,
  );
}

/**
 * Load tfjs on the requested (or fastest available) backend. Idempotent: every call returns the same
 * promise; asking for a different backend once one is chosen throws, since tfjs state is global.
 */
export function loadTf(opts: LoadTfOptions = {}): Promise<LoadedTf> {
  const want = opts.backend ?? backendFromEnv();
  const key = `${want}/${opts.threads ?? ""}`;
  if (cached) {
    if (cached.key === key || (opts.backend === undefined && process.env.CAPFLOW_TF_BACKEND === undefined)) {
      return cached.promise;
    }
    return cached.promise.then((loaded) => {
      if (want === "auto" || want === loaded.kind) return loaded;
      throw new Error(
        `tfjs is already running on backend ${loaded.kind}; cannot switch to ${want} in this process`,
      );
    });
  }
  const promise = pick(want, opts.threads);
  cached = { key, promise };
  // A failed load may be retried with other options.
  promise.catch(() => {
    if (cached?.promise === promise) cached = undefined;
  });
  return promise;
}

async function pick(want: BackendKind | "auto", threads: number | undefined): Promise<LoadedTf> {
  const order: BackendKind[] = want === "auto" ? ["tensorflow-gpu", "tensorflow", "wasm"] : [want];
  const skipped: LoadedTf["skipped"] = [];
  for (const kind of order) {
    try {
      const loaded = await tryLoad(kind, threads);
      return { ...loaded, skipped };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split("\n")[0]! : String(err);
      if (want !== "auto") throw new Error(forcedFailure(kind, reason), { cause: err });
      skipped.push({ kind, reason });
    }
  }
  throw new Error(
    `no TensorFlow.js backend loaded: ${skipped.map((s) => `${s.kind}: ${s.reason}`).join("; ")}`,
  );
}

function forcedFailure(kind: BackendKind, reason: string): string {
  const native = kind === "tensorflow-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
  const fix =
    kind === "tensorflow" || kind === "tensorflow-gpu"
      ? `Install ${native} where its installer can download libtensorflow 2.9.1 (network access), or point it ` +
        `at a mirror with TFJS_NODE_BASE_URI / TFJS_NODE_CDN_STORAGE (or npm_config_tfjs_binding_binary_host_mirror) ` +
        `and reinstall${kind === "tensorflow-gpu" ? "; the GPU build also needs CUDA 11.2 + cuDNN 8.1" : ""}; ` +
        `or set CAPFLOW_TF_BACKEND=wasm (or auto) to run on the portable wasm backend.`
      : `Check that @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm are installed, or set CAPFLOW_TF_BACKEND=auto.`;
  return `CAPFLOW_TF_BACKEND=${kind} was requested but could not be loaded: ${reason}. ${fix}`;
}

async function tryLoad(kind: BackendKind, threads: number | undefined): Promise<Omit<LoadedTf, "skipped">> {
  switch (kind) {
    case "tensorflow-gpu":
    case "tensorflow": {
      // The native packages bring (and re-export) their own @tensorflow/tfjs; take `tf` from the module
      // that loaded so that kernels, variables and the engine all live in one tfjs instance.
      const tf = require(
        kind === "tensorflow-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node",
      ) as Tf;
      await tf.setBackend("tensorflow");
      await tf.ready();
      return { tf, backend: tf.getBackend(), kind };
    }
    case "wasm": {
      const tf = (await import("@tensorflow/tfjs")) as Tf;
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      if (threads !== undefined) wasm.setThreadsCount(threads);
      if (!(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') failed to initialise");
      await tf.ready();
      registerWasmKernels(tf);
      return { tf, backend: tf.getBackend(), kind, threads: wasm.getThreadsCount() };
    }
    case "cpu": {
      const tf = (await import("@tensorflow/tfjs")) as Tf;
      await tf.setBackend("cpu");
      await tf.ready();
      return { tf, backend: tf.getBackend(), kind };
    }
  }
}
