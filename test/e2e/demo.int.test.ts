import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  LocalStore,
  keys,
  listShardIndexes,
  readDatasetInfo,
  readModelPointer,
  getJson,
} from "@capflow/common";
import { tempDir } from "../support/services.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Processes whose environment names this CAPFLOW_HOME: what the demo started and must have stopped. */
function processesUsing(home: string): number[] {
  const pids: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`CAPFLOW_HOME=${home}`))
        pids.push(Number(pid));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

// The README's first command at its smallest size, as a newcomer runs it (minus the installer).
describe("capflow demo --size ci", () => {
  it("runs every stage, leaves its outputs in the store, and leaves no process behind", async () => {
    const home = await tempDir("demo");
    // As ./capflow runs it: node with tsx's loader.
    const child = spawn(
      process.execPath,
      [
        "--import",
        path.join(ROOT, "node_modules/tsx/dist/loader.mjs"),
        path.join(ROOT, "packages/cli/src/main.ts"),
        "demo",
        "--size",
        "ci",
        "--epochs",
        "2",
      ],
      {
        env: { ...process.env, CAPFLOW_HOME: home, CAPFLOW_REDIS_URL: "", CAPFLOW_LOG_LEVEL: "warn" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code, out.slice(-3000)).toBe(0);

    for (const stage of [
      "1/6 processes",
      "2/6 dataset",
      "3/6 ingest",
      "4/6 features",
      "5/6 training",
      "6/6 captions",
    ]) {
      expect(out).toContain(stage);
    }
    // Scores with their 95% intervals beside the normalised retrieval baseline.
    expect(out).toMatch(/retrieval baseline \(normalised\)\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/);
    // The API answers with the default decoding (beam), a non-empty caption and its confidence.
    expect(out).toMatch(
      /via the API \(beam\), fluent-[0-9a-f-]+\.png: "[^"]+" \((same as above|the run's report said "[^"]*"); confidence (\d\.\d\d|n\/a)(, out of domain)?; default@emoji-ci-e2\/epoch-\d+, \d+ ms\)/,
    );

    const store = new LocalStore(path.join(home, "store"));
    const info = await readDatasetInfo(store, "emoji-ci");
    expect(info.splits).toEqual({ train: 240, val: 60, test: 60 });
    const { id: encoderId } = await getJson<{ id: string }>(store, "encoders/current.json");
    let vectors = 0;
    let shards = 0;
    for await (const index of listShardIndexes(store, encoderId, "emoji-ci")) {
      shards++;
      vectors += index.ids.length;
    }
    expect(shards).toBe(info.shards.length);
    expect(vectors).toBe(360);
    const pointer = await readModelPointer(store, "default");
    expect(pointer.runId).toBe("emoji-ci-e2");
    expect(await store.head(`${pointer.checkpoint}COMMIT.json`)).toBeDefined();
    const result = await getJson<{ test: { samples: unknown[] } }>(
      store,
      `${keys.runPrefix("emoji-ci-e2")}result.json`,
    );
    expect(result.test.samples).toHaveLength(60);
    const report = path.join(home, "reports", "emoji-ci-e2.html");
    expect(out).toContain(`Run report: ${report}`);
    expect(fs.readFileSync(report, "utf8")).toContain("<html");

    // Nothing left running: no process carries this demo's CAPFLOW_HOME any more.
    await new Promise((r) => setTimeout(r, 500));
    expect(processesUsing(home)).toEqual([]);
  });
});
