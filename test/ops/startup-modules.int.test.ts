import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { freePort } from "@capflow/common";
import { tempDir, testEnv } from "../support/services.ts";

// docs/architecture.md, "Packages": processes that run no model never load a model runtime. The API
// and `capflow --help` used to load onnxruntime-node, tfjs, sharp and protobufjs at start through
// the one barrel of @capflow/common.
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = path.join(ROOT, "packages/cli/src/main.ts");
const RECORD = path.join(ROOT, "test/support/record-modules.js");
const MODEL_RUNTIMES = /\/node_modules\/(onnxruntime-node|@tensorflow|nsfwjs|protobufjs)\/|\/packages\/ml\//;

async function moduleLog(): Promise<string> {
  return path.join(await tempDir("modules"), "loaded.txt");
}

const loaded = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n");

describe("modules a started process loads", () => {
  it("capflow --help loads no model runtime", async () => {
    const log = await moduleLog();
    const r = spawnSync(process.execPath, ["--import", "tsx", "--import", RECORD, CLI, "--help"], {
      cwd: ROOT,
      env: { ...process.env, CAPFLOW_TEST_MODULE_LOG: log },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const urls = loaded(log);
    expect(urls.some((u) => u.includes("/packages/cli/src/main.ts"))).toBe(true);
    expect(urls.filter((u) => MODEL_RUNTIMES.test(u))).toEqual([]);
  });

  it("a started API process serves requests without ONNX Runtime, tfjs or @capflow/ml", async () => {
    const log = await moduleLog();
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", "--import", RECORD, CLI, "api"], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...testEnv({ CAPFLOW_HOME: await tempDir("home") }),
        CAPFLOW_API_HOST: "127.0.0.1",
        CAPFLOW_API_PORT: String(port),
        CAPFLOW_TEST_MODULE_LOG: log,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    try {
      let ready = false;
      for (let i = 0; i < 240 && !ready && child.exitCode === null; i++) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!ready) await new Promise((r) => setTimeout(r, 500));
      }
      expect(ready, stderr).toBe(true);
      const openapi = await fetch(`http://127.0.0.1:${port}/openapi.json`);
      expect(openapi.status).toBe(200);
      const urls = loaded(log);
      expect(urls.some((u) => u.includes("/packages/api/src/server.ts"))).toBe(true);
      expect(urls.filter((u) => MODEL_RUNTIMES.test(u))).toEqual([]);
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  });
});
