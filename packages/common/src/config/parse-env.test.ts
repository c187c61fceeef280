import { describe, expect, it } from "vitest";
import { CommonEnv, redactEnv } from "./env.ts";
import { ConfigError, parseEnv } from "./parse-env.ts";

describe("parseEnv", () => {
  it("applies defaults", () => {
    const env = parseEnv(CommonEnv, {});
    expect(env.CAPFLOW_STORE).toBe("local");
    expect(env.CAPFLOW_REDIS_URL).toBeUndefined();
  });

  it("fails naming every bad variable", () => {
    const err = (() => {
      try {
        parseEnv(
          CommonEnv,
          { CAPFLOW_STORE: "ftp", CAPFLOW_REDIS_URL: "localhost:6379", CAPFLOW_OPS_PORT: "x" },
          "ingest",
        );
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toMatch(/^ingest: invalid configuration/);
    expect(err?.message).toMatch(/CAPFLOW_STORE:/);
    expect(err?.message).toMatch(/CAPFLOW_REDIS_URL: must be a redis/);
    expect(err?.message).toMatch(/CAPFLOW_OPS_PORT:/);
  });

  it("takes an empty variable as unset", () => {
    expect(parseEnv(CommonEnv, { CAPFLOW_REDIS_URL: "", CAPFLOW_STORE: "" })).toMatchObject({
      CAPFLOW_STORE: "local",
    });
    expect(parseEnv(CommonEnv, { CAPFLOW_REDIS_URL: "" }).CAPFLOW_REDIS_URL).toBeUndefined();
  });

  it("parses booleans as words, not truthiness", () => {
    expect(parseEnv(CommonEnv, { CAPFLOW_S3_FORCE_PATH_STYLE: "false" }).CAPFLOW_S3_FORCE_PATH_STYLE).toBe(
      false,
    );
    expect(parseEnv(CommonEnv, { CAPFLOW_S3_FORCE_PATH_STYLE: "true" }).CAPFLOW_S3_FORCE_PATH_STYLE).toBe(
      true,
    );
  });

  it("redacts secrets and URL passwords before logging", () => {
    const out = redactEnv({
      CAPFLOW_S3_SECRET_ACCESS_KEY: "s3cr3t",
      CAPFLOW_S3_ACCESS_KEY_ID: "AKIA",
      CAPFLOW_REDIS_URL: "redis://:hunter2@host:6379",
    });
    expect(JSON.stringify(out)).not.toMatch(/s3cr3t|hunter2/);
    expect(out.CAPFLOW_S3_ACCESS_KEY_ID).toBe("AKIA");
  });
});
