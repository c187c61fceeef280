/**
 * A GPU node whose encoder fell back to the CPU is a broken node that nobody notices: it takes
 * shards at a tenth of the speed and looks healthy. With CAPFLOW_FEATURE_REQUIRE_PROVIDER set, a
 * worker whose encoder did not load that execution provider refuses to start, naming what loaded.
 */
export class ProviderMissingError extends Error {
  override name = "ProviderMissingError";
}

/** The execution providers an encoder runs on, from its backend string (`onnxruntime-node:cuda,cpu`). */
export function loadedProviders(backend: string): string[] {
  const [runtime, list] = backend.split(":");
  if (runtime !== "onnxruntime-node" || !list) return [];
  return list.split(",").filter(Boolean);
}

/** The provider that runs the graph first (ORT assigns each node to the first provider that takes it). */
export function primaryProvider(backend: string): string {
  return loadedProviders(backend)[0] ?? backend.split(":")[0] ?? "unknown";
}

export function assertProvider(required: string | undefined, backend: string): void {
  if (!required) return;
  if (primaryProvider(backend) === required) return;
  throw new ProviderMissingError(
    `CAPFLOW_FEATURE_REQUIRE_PROVIDER=${required}, but the encoder runs on "${backend}": the ${required} ` +
      `execution provider did not load (missing CUDA/cuDNN libraries, no GPU visible to the container, ` +
      `or onnxruntime-node installed without its GPU binaries). Refusing to start rather than run a GPU node on the CPU.`,
  );
}
