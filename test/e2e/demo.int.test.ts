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
import { runCapflow as capflowCli } from "../support/capflow-cli.ts";

const DEMO_ENV = { CAPFLOW_REDIS_URL: "", CAPFLOW_LOG_LEVEL: "warn" };
/** The command's stdout and stderr together, as a user sees them in a terminal. */
async function runCapflow(args: string[], home: string): Promise<{ code: number | null; out: string }> {
  const ran = await capflowCli(args, { ...DEMO_ENV, CAPFLOW_HOME: home });
  return { code: ran.code, out: ran.stdout + ran.stderr };
}

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
    const { code, out } = await runCapflow(["demo", "--size", "ci", "--epochs", "2"], home);
    expect(code, out.slice(-3000)).toBe(0);

    for (const stage of [
      "1/7 processes",
      "2/7 dataset",
      "3/7 ingest",
      "4/7 features",
      "5/7 training",
      "6/7 captions",
      "7/7 check sets",
    ]) {
      expect(out).toContain(stage);
    }
    // Each step says when it started, so a reader sees where the time went.
    expect(out).toMatch(/== 7\/7 check sets.*\[\d+ s\]/);
    // Scores with their 95% intervals beside the normalised retrieval baseline.
    expect(out).toMatch(/retrieval baseline \(normalised\)\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/);
    // The API answers with the default decoding (beam), a non-empty caption and its confidence.
    expect(out).toMatch(
      /via the API \(beam\), fluent-[0-9a-f-]+\.png: "[^"]+" \((same as above|the run's report said "[^"]*"); confidence (\d\.\d\d|n\/a)(, out of domain)?; default@emoji-ci-e2\/epoch-\d+, \d+ ms\)/,
    );

    // The check sets, scored by the published model: the 64-px render with its interval, photographs
    // with the share flagged out of domain (scripts/test.sh installs mate-backgrounds).
    expect(out).toMatch(
      /test style drawn at 64 px \(emoji-ci-test-render-64, 60 images\): exact match \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/,
    );
    expect(out).toMatch(/real photographs \(photos, \d+ images\): \d+\.\d% flagged out of domain/);

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

    // `capflow eval` on the demo's test split scores the published model through the caption
    // workers' code: its default-decoding captions are the run report's, image for image.
    const evalOut = path.join(home, "eval.json");
    const evalRun = await runCapflow(
      ["eval", "--model", "default", "--dataset", "emoji-ci", "--split", "test", "--out", evalOut],
      home,
    );
    expect(evalRun.code, evalRun.out.slice(-3000)).toBe(0);
    expect(evalRun.out).toMatch(/model default@emoji-ci-e2\/epoch-\d+ on emoji-ci\/test/);
    const evaluated = JSON.parse(fs.readFileSync(evalOut, "utf8")) as {
      images: number;
      scores: Record<
        string,
        { cider: { value: number; low: number; high: number }; exact: { value: number } }
      >;
      samples: Array<{ key: string; model: string; confidence: number; outOfDomain: boolean }>;
    };
    expect(evaluated.images).toBe(60);
    for (const system of ["model", "greedy", "rerank", "baseline"]) {
      const { cider, exact } = evaluated.scores[system]!;
      expect(cider.low).toBeLessThanOrEqual(cider.value);
      expect(cider.value).toBeLessThanOrEqual(cider.high);
      expect(exact.value).toBeGreaterThanOrEqual(0);
      expect(exact.value).toBeLessThanOrEqual(1);
    }
    const runSamples = (
      await getJson<{ test: { samples: Array<{ key: string; model: string }> } }>(
        store,
        `${keys.runPrefix("emoji-ci-e2")}result.json`,
      )
    ).test.samples;
    const byKey = new Map(evaluated.samples.map((s) => [s.key, s]));
    for (const s of runSamples) expect(byKey.get(s.key)?.model, s.key).toBe(s.model);
    expect(evaluated.samples.every((s) => s.confidence >= 0 && s.confidence <= 1)).toBe(true);

    // Nothing left running: no process carries this demo's CAPFLOW_HOME any more.
    await new Promise((r) => setTimeout(r, 500));
    expect(processesUsing(home)).toEqual([]);
  });
});
