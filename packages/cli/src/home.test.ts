import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findHome, NoHomeError, settleHome } from "./home.ts";

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), "capflow-home-"));

describe("finding CAPFLOW_HOME", () => {
  it("walks up from the current directory to the first .capflow", async () => {
    const top = await tmp();
    await fs.mkdir(path.join(top, ".capflow"));
    const below = path.join(top, "a", "b");
    await fs.mkdir(below, { recursive: true });
    const found = findHome(below, path.join(top, "no-install"));
    expect(found).toMatchObject({ home: path.join(top, ".capflow"), found: true });
    expect(found.searched.slice(0, 3)).toEqual([
      path.join(below, ".capflow"),
      path.join(top, "a", ".capflow"),
      path.join(top, ".capflow"),
    ]);
  });

  it("falls back to the checkout's own .capflow, and otherwise lists every place it looked", async () => {
    const install = await tmp();
    const elsewhere = await tmp();
    expect(findHome(elsewhere, install)).toMatchObject({
      found: false,
      home: path.join(elsewhere, ".capflow"),
    });
    expect(findHome(elsewhere, install).searched).toContain(path.join(install, ".capflow"));
    await fs.mkdir(path.join(install, ".capflow"));
    expect(findHome(elsewhere, install)).toMatchObject({ found: true, home: path.join(install, ".capflow") });
  });

  it("a command that reads existing data refuses a missing CAPFLOW_HOME; ingest may create it", async () => {
    const dir = await tmp();
    const env = { CAPFLOW_HOME: "nowhere" };
    expect(() => settleHome("caption", { ...env }, dir)).toThrow(NoHomeError);
    expect(() => settleHome("caption", { ...env }, dir)).toThrow(path.join(dir, "nowhere"));
    const ingestEnv: NodeJS.ProcessEnv = { ...env };
    expect(settleHome("ingest", ingestEnv, dir)).toBeUndefined();
    expect(ingestEnv.CAPFLOW_HOME).toBe(path.join(dir, "nowhere"));
    // Redis and the store elsewhere: no home needed at all.
    expect(
      settleHome("caption", { ...env, CAPFLOW_REDIS_URL: "redis://h:6379", CAPFLOW_STORE: "s3" }, dir),
    ).toBeUndefined();
    // export reads only the store: a store elsewhere is enough, without Redis.
    expect(() => settleHome("export", { ...env }, dir)).toThrow(NoHomeError);
    expect(settleHome("export", { ...env, CAPFLOW_STORE_DIR: dir }, dir)).toBeUndefined();
  });
});
