import { loadTf } from "../compute/backend.ts";

/** The tfjs encoder runs on whatever backend the compute module picked (native, else wasm). */
export async function ensureTfBackend(): Promise<string> {
  return (await loadTf()).backend;
}
