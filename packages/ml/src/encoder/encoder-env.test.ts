import { describe, expect, it } from "vitest";
import { createLogger, LocalStore } from "@capflow/common";
import { EncoderEnv, encoderConfigFromEnv } from "./encoder-env.ts";

describe("encoderConfigFromEnv", () => {
  const store = new LocalStore("/nonexistent-store-never-written");
  const log = createLogger("encoder-env-test", "silent");

  it("maps the encoder variables both workers share onto the encoder's load options", () => {
    const env = EncoderEnv.parse({
      CAPFLOW_FEATURE_RUNTIME: "tfjs",
      CAPFLOW_FEATURE_THREADS: "3",
      CAPFLOW_ENCODER_CACHE: "/tmp/encoders",
      CAPFLOW_ENCODER_MODEL: "store:models/enc/model.json",
      CAPFLOW_ENCODER_LAYER: "pool",
      CAPFLOW_ENCODER_PRECISION: "int8",
      CAPFLOW_INT8_GATE_IMAGES: "50",
    });
    const config = encoderConfigFromEnv(env, { store, log });
    expect(config).toMatchObject({
      runtime: "tfjs",
      threads: 3,
      cacheDir: "/tmp/encoders",
      model: { source: "store:models/enc/model.json", layer: "pool", name: undefined },
      precision: "int8",
      int8GateImages: 50,
    });
    expect(config.store).toBe(store);
    expect(config.executionProviders).toBeUndefined();
  });

  it("defaults to the ONNX runtime, fp32 and the default model", () => {
    const config = encoderConfigFromEnv(EncoderEnv.parse({}), { store, log });
    expect(config).toMatchObject({ runtime: "onnx", precision: "fp32", model: undefined });
    expect(config.threads).toBeGreaterThanOrEqual(1);
  });
});
