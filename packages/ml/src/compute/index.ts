export { loadTf, backendFromEnv, BACKEND_KINDS } from "./backend.ts";
export type { Tf, BackendKind, LoadTfOptions, LoadedTf } from "./backend.ts";
export { registerWasmKernels } from "./wasm-kernels.ts";
