// Local stand-in for `loadTf()` from packages/common/src/compute/backend.ts (being written
// separately). TODO: replace `ensureTfBackend()` with `loadTf()` from @capflow/common once it lands.
//
// @tensorflow/tfjs-backend-wasm is a dependency of @capflow/common, not of this package, so it is
// resolved from common's package folder (a workspace dependency of ours). Registering it has a
// global effect on tfjs-core's engine, which is shared by every copy through the global namespace.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";

const here = path.dirname(fileURLToPath(import.meta.url));
let ready: Promise<string> | undefined;

function requireWasmBackend(): void {
  const candidates = [
    // our own dependency, if it is ever added
    path.join(here, "../../package.json"),
    // @capflow/common's dependency (workspace link)
    path.join(here, "../../node_modules/@capflow/common/package.json"),
    path.join(here, "../../../common/package.json"),
  ];
  let lastErr: unknown;
  for (const anchor of candidates) {
    try {
      createRequire(anchor)("@tensorflow/tfjs-backend-wasm");
      return;
    } catch (err) {
      lastErr = err;
    }
  }
  throw new Error(`@tensorflow/tfjs-backend-wasm not found: ${String(lastErr)}`);
}

/** Makes sure tfjs runs on something faster than the pure-JS cpu backend. Returns the backend name. */
export function ensureTfBackend(): Promise<string> {
  ready ??= (async () => {
    await tf.ready();
    if (tf.getBackend() === "cpu" || tf.getBackend() === undefined) {
      requireWasmBackend();
      const ok = await tf.setBackend("wasm");
      if (!ok) throw new Error("tf.setBackend('wasm') failed");
      await tf.ready();
    }
    return tf.getBackend();
  })();
  return ready;
}
