import { describe, expect, it } from "vitest";
import { assertProvider, loadedProviders, primaryProvider } from "./require-provider.ts";

describe("assertProvider", () => {
  it("passes when the required provider runs the graph", () => {
    expect(() => assertProvider("cuda", "onnxruntime-node:cuda,cpu")).not.toThrow();
    expect(() => assertProvider(undefined, "onnxruntime-node:cpu")).not.toThrow();
  });

  it("refuses a worker that fell back to cpu, naming the variable and what loaded", () => {
    expect(() => assertProvider("cuda", "onnxruntime-node:cpu")).toThrow(
      /CAPFLOW_FEATURE_REQUIRE_PROVIDER=cuda, but the encoder runs on "onnxruntime-node:cpu"/,
    );
    expect(() => assertProvider("cuda", "tfjs:wasm")).toThrow(/did not load/);
  });

  it("reads the providers from the backend string", () => {
    expect(loadedProviders("onnxruntime-node:tensorrt,cuda,cpu")).toEqual(["tensorrt", "cuda", "cpu"]);
    expect(primaryProvider("onnxruntime-node:cpu")).toBe("cpu");
    expect(primaryProvider("tfjs:wasm")).toBe("tfjs");
  });
});
