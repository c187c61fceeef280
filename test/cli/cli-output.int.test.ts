import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createQueue,
  createRedis,
  readDatasetInfo,
  startRuntime,
  CommonEnv,
  type LocalStore,
} from "@capflow/common";
import { ingestDataset } from "@capflow/ingest";
import type { Encoder } from "@capflow/ml";
import { waitForBulkFeatures } from "@capflow/cli";
import type { Captioner } from "@capflow/caption-worker";
import { freshPrefix, localStore, redisUrl, tempDir } from "../support/services.ts";
import { extractAndWriteShard, preparePublishedModel } from "../support/pipeline.ts";
import { startCaptioner, startCaptionWorkers, type CaptionWorkers } from "../support/caption-workers.ts";
import { drawImage, writeJsonlDataset } from "../support/images.ts";
import { ROOT, runCapflow as capflow } from "../support/capflow-cli.ts";

/**
 * The capflow command as a user runs it: a child process, stdout and stderr read apart. A model is
 * really trained (briefly) on drawn images and a real caption worker runs in this process.
 */

/** Lines of stdout that are JSON objects written by the logger (pino's `level` + `msg`). */
const logLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => "level" in o && "msg" in o);

describe("capflow on the command line", () => {
  let store: LocalStore;
  let encoder: Encoder;
  let dataset: string;
  let captioner: Captioner;
  let prefix: string;
  let workers: CaptionWorkers;
  let env: Record<string, string>;

  beforeAll(async () => {
    store = await localStore();
    const prepared = await preparePublishedModel(store, { images: 24, epochs: 1 });
    ({ encoder, dataset } = prepared);
    captioner = await startCaptioner(store, encoder);
    prefix = freshPrefix();
    workers = startCaptionWorkers({ captioner, store, prefix });
    // Info level on purpose: every log line a command writes must land on stderr.
    env = {
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: prefix,
      CAPFLOW_STORE_DIR: store.location,
      CAPFLOW_LOG_LEVEL: "info",
    };
  });
  afterAll(async () => {
    await workers?.close();
    const conn = createRedis(redisUrl(), "producer");
    for (const name of ["captions", "caption-bulk", "features"] as const) {
      const q = createQueue(name, { connection: conn, prefix });
      await q.obliterate({ force: true });
      await q.close();
    }
    conn.disconnect();
    captioner?.dispose();
  });

  it("caption --bulk: stdout is the results as JSON lines and nothing else; logs go to stderr", async () => {
    const info = await readDatasetInfo(store, dataset);
    const ran = await capflow(["caption", "--bulk", dataset], env);
    expect(ran.code, ran.stderr).toBe(0);
    const lines = ran.stdout.trim().split("\n");
    expect(lines).toHaveLength(info.images);
    for (const line of lines) {
      const row = JSON.parse(line) as Record<string, unknown>;
      expect(row).not.toHaveProperty("level");
      expect(typeof row.id).toBe("string");
      expect(typeof row.caption).toBe("string");
    }
    expect(logLines(ran.stderr).length).toBeGreaterThan(0);
    expect(ran.stderr).toMatch(/caption job b\w+: 24 of 24 images captioned/);
  });

  it("caption <files>: one line per file in the order given, a table or --json, no listener warning", async () => {
    const dir = await tempDir("cli-images");
    // 14 files (beyond the default cap of 10 listeners), with one broken file in the middle.
    const files: string[] = [];
    for (let i = 0; i < 14; i++) {
      const file = path.join(dir, `${String(13 - i).padStart(2, "0")}-img.png`);
      await fs.writeFile(file, i === 6 ? Buffer.from("not an image") : await drawImage(500 + i));
      files.push(file);
    }
    const json = await capflow(["caption", "--json", ...files], env);
    expect(json.code, json.stderr).toBe(1); // one file failed
    expect(json.stderr).not.toMatch(/MaxListenersExceededWarning/);
    const rows = json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { file: string; caption?: string; error?: string; modelVersion?: string });
    expect(rows.map((r) => r.file)).toEqual(files);
    rows.forEach((r, i) => {
      if (i === 6) expect(r.error).toMatch(/JPEG, PNG, GIF or WebP/);
      else {
        expect(r.caption, JSON.stringify(r)).toEqual(expect.any(String));
        expect(r.modelVersion).toContain("default@");
      }
    });
    expect(logLines(json.stderr).length).toBeGreaterThan(0);

    const table = await capflow(["caption", ...files.slice(0, 3)], env);
    expect(table.code, table.stderr).toBe(0);
    const out = table.stdout.trimEnd().split("\n");
    expect(out[0]).toMatch(/^file\s+caption$/);
    expect(out.slice(1).map((l) => l.split(/\s{2,}/)[0])).toEqual(files.slice(0, 3));
    expect(out.slice(1).map((l) => l.split(/\s{2,}/)[1])).toEqual(rows.slice(0, 3).map((r) => r.caption));
  });

  it("ingest: the summary (with split counts) on stdout, logs on stderr; --help says how splits are assigned", async () => {
    const dir = await writeJsonlDataset(await tempDir("cli-ds"), 20);
    const ran = await capflow(["ingest", dir, "--dataset", "cli-ingest", "--json"], env);
    expect(ran.code, ran.stderr).toBe(0);
    const summary = JSON.parse(ran.stdout) as {
      images: number;
      splits: Record<"train" | "val" | "test", number>;
      splitSource: { listed: number; hashed: number };
    };
    expect(summary.images).toBe(20);
    expect(summary.splitSource).toEqual({ listed: 0, hashed: 20 });
    expect(summary.splits.train + summary.splits.val + summary.splits.test).toBe(20);
    expect(logLines(ran.stderr).some((l) => l.msg === "ingest done")).toBe(true);

    const text = await capflow(["ingest", dir, "--dataset", "cli-ingest"], env);
    expect(text.stdout).toMatch(
      /splits: train \d+, val \d+, test \d+ \(none listed by the dataset: assigned 80\/10\/10 by a hash of each file name\)/,
    );
    expect(logLines(text.stdout)).toEqual([]);
    const help = await capflow(["ingest", "--help"], {});
    expect(help.stdout).toMatch(/80% train, 10% val, 10% test/);
    expect(help.stdout).toMatch(/Flickr_8k\.\{train,dev,test\}Images\.txt/);
  });

  it("status: per dataset shards and vectors per encoder, runs with scores, bulk jobs with progress", async () => {
    const ran = await capflow(["status", "--json"], env);
    expect(ran.code, ran.stderr).toBe(0);
    const s = JSON.parse(ran.stdout) as {
      datasets: Array<{
        name: string;
        images: number;
        features: Array<{ encoderId: string; shards: { done: number; total: number }; vectors: number }>;
      }>;
      runs: Array<{ runId: string; epoch: number; scores?: { cider: number }; publishedAs: string[] }>;
      batches: Array<{ dataset: string; status: string; captioned: number }>;
    };
    const drawn = s.datasets.find((d) => d.name === dataset)!;
    expect(drawn.images).toBe(24);
    const f = drawn.features.find((x) => x.encoderId === encoder.id)!;
    expect(f.shards).toMatchObject({ done: 3, total: 3 });
    expect(f.vectors).toBe(24);
    const run = s.runs.find((r) => r.publishedAs.includes("default"))!;
    expect(run.epoch).toBe(1);
    expect(Number.isFinite(run.scores?.cider)).toBe(true);
    expect(s.batches.some((b) => b.dataset === dataset && b.status === "done" && b.captioned === 24)).toBe(
      true,
    );
    const text = await capflow(["status", dataset], env);
    expect(text.stdout).toContain(`features ${encoder.id}`);
    expect(text.stdout).toMatch(/3\/3 shards done/);
    expect(text.stdout).toMatch(/epoch 1\/1 \(finished\)/);
    const none = await capflow(["status", "no-such-set"], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no ingested dataset named "no-such-set".*datasets: .*drawn/);
  });

  it("caption --bulk before features: waits with progress until they are written, or says which shards lack them", async () => {
    const rt = await startRuntime("test", CommonEnv, { source: env, signals: false });
    const conn = createRedis(redisUrl(), "producer");
    const features = createQueue("features", { connection: conn, prefix });
    try {
      const dir = await writeJsonlDataset(await tempDir("cli-late"), 16);
      await ingestDataset(store, features, {
        dataset: "late",
        format: "jsonl-folder",
        dir,
        shardSize: 8,
        onError: "fail",
      });
      const info = await readDatasetInfo(store, "late");
      // The shards are queued and nobody works them yet: the wait goes on while "a worker" writes them.
      const waited = waitForBulkFeatures(rt, "late", "default", { pollMs: 100, noWorkerGraceMs: 600_000 });
      let settled = false;
      void waited.finally(() => (settled = true)).catch(() => {});
      for (const shardId of info.shards) {
        await new Promise((r) => setTimeout(r, 500));
        expect(settled).toBe(false);
        await extractAndWriteShard(store, encoder, "late", shardId);
      }
      await expect(waited).resolves.toMatchObject({ info: { name: "late" } });

      // Lost jobs (a flushed Redis) and no features: it names the shards and the command to run.
      await ingestDataset(store, features, {
        dataset: "lost",
        format: "jsonl-folder",
        dir,
        shardSize: 8,
        onError: "fail",
      });
      await features.obliterate({ force: true });
      const lost = await readDatasetInfo(store, "lost");
      const ran = await capflow(["caption", "--bulk", "lost"], env);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain(`lost: 2 of 2 shards have no features from ${encoder.id}`);
      for (const s of lost.shards) expect(ran.stderr).toContain(s);
      expect(ran.stderr).toContain("capflow reconcile lost");
      expect(ran.stdout).toBe("");
    } finally {
      await features.obliterate({ force: true });
      await features.close();
      conn.disconnect();
      await rt.shutdown.run();
    }
  });

  it("finds the home from a folder below it, or says where it looked", async () => {
    const top = await tempDir("cli-home");
    const home = path.join(top, ".capflow");
    await fs.cp(store.location, path.join(home, "store"), { recursive: true });
    const below = path.join(top, "a", "b");
    await fs.mkdir(below, { recursive: true });
    const found = await capflow(
      ["status", "--json"],
      { CAPFLOW_REDIS_URL: redisUrl(), CAPFLOW_QUEUE_PREFIX: prefix },
      below,
    );
    expect(found.code, found.stderr).toBe(0);
    expect(
      (JSON.parse(found.stdout) as { datasets: Array<{ name: string }> }).datasets.map((d) => d.name),
    ).toContain(dataset);

    const empty = await tempDir("cli-nohome");
    const lost = await capflow(
      ["caption", path.join(empty, "x.png")],
      { CAPFLOW_REDIS_URL: redisUrl() },
      empty,
    );
    if (await fs.stat(path.join(ROOT, ".capflow")).catch(() => undefined)) {
      // A developer's checkout with a home of its own: that one is found instead (the documented fallback).
      expect(lost.stderr).not.toContain("no capflow home");
    } else {
      expect(lost.code).toBe(1);
      expect(lost.stderr).toContain("no capflow home for `capflow caption`: looked for .capflow in");
      expect(lost.stderr).toContain(path.join(empty, ".capflow"));
      expect(lost.stderr).toContain(path.join(ROOT, ".capflow"));
    }
    expect(await fs.readdir(empty)).toEqual([]);
  });

  it("an unreachable Redis is one line, a missing folder is found before Redis, usage errors exit 2", async () => {
    const dead = await capflow(["queue", "stats", "features"], { CAPFLOW_REDIS_URL: "redis://127.0.0.1:1" });
    expect(dead.code).toBe(1);
    expect(dead.stderr).not.toContain("[ioredis]");
    expect(dead.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^capflow: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/),
    ]);

    const cwd = await tempDir("cli-nofolder");
    const missing = await capflow(["ingest", "/nonexistent"], {}, cwd);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such folder: /nonexistent");
    expect(missing.stderr).not.toMatch(/redis/i);
    expect(await fs.readdir(cwd)).toEqual([]);

    for (const args of [["queue", "bogus", "features"], ["caption"], ["ingest"], ["status", "--bogus"]]) {
      const ran = await capflow(args, env);
      expect(ran.code, `${args.join(" ")}: ${ran.stderr}`).toBe(2);
    }
  });
});
