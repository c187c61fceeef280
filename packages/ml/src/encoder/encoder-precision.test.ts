import { describe, expect, it } from "vitest";
import { keys } from "@capflow/common";
import { EncoderEnv } from "./encoder-env.ts";
import { encoderId, int8EncoderId, load } from "./index.ts";

describe("encoder precision", () => {
  const fp32 = encoderId();
  const int8 = int8EncoderId(fp32);

  it("gives the int8 encoder its own id, derived from the fp32 one", () => {
    expect(fp32).toMatch(/^inceptionv3-nsfwjs-[0-9a-f]{12}$/);
    expect(int8).not.toBe(fp32);
    expect(int8.startsWith(`${fp32}-int8`)).toBe(true);
  });

  it("keys feature shards by encoder id, so int8 and fp32 features never share an object", () => {
    for (const key of [keys.featureMatrix, keys.featureIndex]) {
      const a = key(fp32, "flickr8k", "shard-0001");
      const b = key(int8, "flickr8k", "shard-0001");
      expect(a).not.toBe(b);
      expect(a).toContain(`/${fp32}/`);
      expect(b).toContain(`/${int8}/`);
      // Neither key is a prefix of the other's folder: a listing under one id never returns the other's.
      expect(b.startsWith(`features/${fp32}/`)).toBe(false);
    }
  });

  it("reads CAPFLOW_ENCODER_PRECISION, fp32 by default, and refuses other values", () => {
    expect(EncoderEnv.parse({}).CAPFLOW_ENCODER_PRECISION).toBe("fp32");
    expect(EncoderEnv.parse({ CAPFLOW_ENCODER_PRECISION: "int8" }).CAPFLOW_ENCODER_PRECISION).toBe("int8");
    expect(EncoderEnv.safeParse({ CAPFLOW_ENCODER_PRECISION: "bf16" }).success).toBe(false);
  });

  it("refuses int8 where it does not exist, naming the valid choices", async () => {
    await expect(load({ runtime: "onnx", precision: "bf16" as never })).rejects.toThrow(/one of: fp32, int8/);
    await expect(load({ runtime: "tfjs", precision: "int8" })).rejects.toThrow(/runtime 'onnx'/);
    await expect(
      load({ runtime: "onnx", precision: "int8", model: { source: "/x/model.json" } }),
    ).rejects.toThrow(/default model/);
  });
});
