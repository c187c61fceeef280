import { describe, expect, it } from "vitest";
import { CapflowProcess } from "../support/fault/process-control.ts";
import { testEnv } from "../support/services.ts";

// A GPU node whose CUDA provider does not load must refuse to start, not run on the CPU unnoticed.
// This machine has no GPU, so asking for cuda is exactly that failure, for real.
describe("CAPFLOW_FEATURE_REQUIRE_PROVIDER", () => {
  it("makes a feature worker whose encoder fell back to cpu exit with a message naming the variable", async () => {
    const worker = new CapflowProcess(
      ["worker", "features"],
      testEnv({
        CAPFLOW_FEATURE_REQUIRE_PROVIDER: "cuda",
        CAPFLOW_FEATURE_THREADS: "1",
        CAPFLOW_NODE_ACCELERATOR: "gpu",
        CAPFLOW_LOG_LEVEL: "info",
      }),
    ).start();
    await worker.wait();
    expect(worker.exits[0]?.code).not.toBe(0);
    expect(worker.output).toMatch(
      /CAPFLOW_FEATURE_REQUIRE_PROVIDER=cuda, but the encoder runs on "onnxruntime-node:cpu"/,
    );
    // It never took jobs: no ops server, no worker.
    expect(worker.output).not.toMatch(/ops server/);
  });
});
