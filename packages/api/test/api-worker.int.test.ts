import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  createQueue,
  createRedis,
  readDatasetInfo,
  readManifest,
  type BulkResultLine,
  type BulkShardResult,
  type ObjectStore,
} from "@capflow/common";
import { buildApiServer } from "@capflow/api";
import { captionBulkCommand, captionImagesCommand } from "@capflow/cli";
import type { Captioner } from "@capflow/caption-worker";
import { freshPrefix, localStore, redisUrl, tempDir } from "../../../test/support/services.ts";
import { preparePublishedModel } from "../../../test/support/pipeline.ts";
import {
  startCaptioner,
  startCaptionWorkers,
  type CaptionWorkers,
} from "../../../test/support/caption-workers.ts";
import { drawImage } from "../../../test/support/images.ts";
import { apiConfig, dropQueues, postImage, silent } from "../../../test/support/api-server.ts";

// The API in front of the real caption worker, with a model really trained (briefly) on drawn images
// by the real pipeline (test/support/pipeline.ts): single captions and a bulk job end to end.
describe("HTTP API with the caption worker", () => {
  let store: ObjectStore;
  let captioner: Captioner;
  let dataset: string;
  let runId: string;
  let prefix: string;
  let conn: ReturnType<typeof createRedis>;
  let workers: CaptionWorkers;
  let app: Awaited<ReturnType<typeof buildApiServer>>;
  const config = apiConfig({
    waitMs: 120_000,
    // "never-published" is served (configured) but has no model: its shards fail in the worker.
    models: ["default", "never-published"],
  });

  beforeAll(async () => {
    store = await localStore();
    const prepared = await preparePublishedModel(store, { images: 24, epochs: 2 });
    dataset = prepared.dataset;
    runId = prepared.result.runId;
    captioner = await startCaptioner(store, prepared.encoder, { models: config.models });
  });
  afterAll(() => captioner?.dispose());

  // A worker per test: the leak guard fails a test that leaves one open.
  beforeEach(async () => {
    prefix = freshPrefix();
    conn = createRedis(redisUrl(), "producer");
    workers = startCaptionWorkers({ captioner, store, prefix, concurrency: 8, bulkConcurrency: 2 });
    app = await buildApiServer({ store, redis: conn, prefix, log: silent, config });
  });
  afterEach(async () => {
    await app.close();
    await workers.close();
    await dropQueues(conn, prefix, ["captions", "caption-bulk"]);
    conn.disconnect();
  });

  it("answers a single caption within the wait, and again from the finished job", async () => {
    const png = await drawImage(4242);
    const post = () => postImage(app, png);
    const first = await post();
    expect(first.statusCode, first.body).toBe(200);
    const body = first.json();
    expect(body).toMatchObject({
      status: "done",
      method: "beam", // the default decoding (docs/quality.md)
      modelVersion: expect.stringContaining(`default@${runId}/epoch-`),
    });
    expect(typeof body.caption).toBe("string");
    expect(Number.isFinite(body.logProb)).toBe(true);
    expect(body.timings.totalMs).toBeGreaterThanOrEqual(0);
    const again = await post();
    expect(again.json()).toMatchObject({ id: body.id, caption: body.caption });
    const byId = await app.inject({ method: "GET", url: `/v1/captions/${body.id}` });
    expect(byId.json()).toMatchObject({ id: body.id, status: "done", caption: body.caption });
    const beam = await app.inject({
      method: "POST",
      url: "/v1/captions?method=beam&beamWidth=2",
      headers: { "content-type": "image/png" },
      payload: png,
    });
    expect(beam.statusCode, beam.body).toBe(200);
    expect(beam.json().method).toBe("beam");
  });

  it("answers 422 with the reason when the caption job fails", async () => {
    const key = `images/${"0".repeat(64)}.png`;
    await store.put(key, Buffer.from("not a png at all"));
    const res = await app.inject({ method: "POST", url: "/v1/captions", payload: { key } });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json()).toMatchObject({
      status: "failed",
      error: "caption_failed",
      message: expect.stringMatching(/format|decode/),
    });
  });

  it("captions a whole ingested dataset as a bulk job and serves the results", async () => {
    const info = await readDatasetInfo(store, dataset);
    const submit = await app.inject({ method: "POST", url: "/v1/caption-jobs", payload: { dataset } });
    expect(submit.statusCode, submit.body).toBe(202);
    const { id, shards, images } = submit.json();
    expect({ shards, images }).toEqual({ shards: info.shards.length, images: info.images });
    const status = await waitForBatch(id);
    expect(status).toMatchObject({
      status: "done",
      shards: { total: info.shards.length, done: info.shards.length, failed: 0 },
      images: info.images,
      captioned: info.images,
      failures: [],
      results: `/v1/caption-jobs/${id}/results`,
    });
    const results = await app.inject({ method: "GET", url: status.results });
    expect(results.statusCode).toBe(200);
    expect(results.headers["content-type"]).toContain("application/x-ndjson");
    const lines = results.body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as BulkResultLine);
    expect(lines).toHaveLength(info.images);
    expect(new Set(lines.map((l) => l.id)).size).toBe(info.images);
    for (const line of lines) expect(typeof line.caption).toBe("string");
    // Assembling again (another status request) rewrites nothing different.
    await app.inject({ method: "GET", url: `/v1/caption-jobs/${id}` });
    expect((await app.inject({ method: "GET", url: status.results })).body).toBe(results.body);
  });

  it("decodes only the requested split's rows in a split bulk job, named by their files", async () => {
    const info = await readDatasetInfo(store, dataset);
    const split = (["test", "val", "train"] as const).find((s) => info.splits[s] > 0)!;
    const wanted = new Map<string, string>();
    for await (const row of readManifest(store, dataset))
      if (row.split === split) wanted.set(row.id, row.file);
    const holding = info.shards.filter(
      (_, i) => info.shardSplits![i]![["train", "val", "test"].indexOf(split)]! > 0,
    );
    const submit = await app.inject({ method: "POST", url: "/v1/caption-jobs", payload: { dataset, split } });
    const { id, shards } = submit.json();
    expect(shards).toBe(holding.length);
    const status = await waitForBatch(id);
    expect(status).toMatchObject({ status: "done", images: wanted.size, captioned: wanted.size });
    // The work done: each shard job decoded only its rows of the split.
    const queue = createQueue("caption-bulk", { connection: conn, prefix });
    const decoded = await Promise.all(
      holding.map(
        async (shardId) =>
          ((await queue.getJob(`caption.${id}.${shardId}`))!.returnvalue as BulkShardResult).captioned,
      ),
    );
    await queue.close();
    expect(decoded.reduce((a: number, b: number) => a + b, 0)).toBe(wanted.size);
    const lines = (await app.inject({ method: "GET", url: status.results })).body
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as BulkResultLine);
    expect(new Map(lines.map((l) => [l.id, l.file]))).toEqual(wanted);
  });

  it("reports failed shards with their reason and retries only those", async () => {
    const submit = await app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset, model: "never-published" },
    });
    const { id, shards } = submit.json();
    const status = await waitForBatch(id);
    expect(status.status).toBe("failed");
    expect(status.failures).toHaveLength(shards);
    expect(status.failures[0].reason).toMatch(/never-published|model/);
    const retry = await app.inject({ method: "POST", url: `/v1/caption-jobs/${id}/retry` });
    expect(retry.json().retried).toBe(shards);
  });

  it("capflow caption: files and --bulk go through the same submission code", async () => {
    const env = {
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: prefix,
      CAPFLOW_STORE_DIR: store.location,
      CAPFLOW_LOG_LEVEL: "silent",
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const dir = await tempDir("cli");
    const files = [path.join(dir, "a.png"), path.join(dir, "b.png")];
    await fs.writeFile(files[0]!, await drawImage(77));
    await fs.writeFile(files[1]!, await drawImage(78));
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const failed = await captionImagesCommand(files, { model: "default", method: "greedy", beamWidth: 3 });
      expect(failed).toBe(0);
      const out = path.join(dir, "results.jsonl");
      await captionBulkCommand(dataset, {
        model: "default",
        method: "greedy",
        beamWidth: 3,
        out,
        pollMs: 100,
      });
      const info = await readDatasetInfo(store, dataset);
      expect((await fs.readFile(out, "utf8")).trim().split("\n")).toHaveLength(info.images);
    } finally {
      spy.mockRestore();
      process.env = saved;
    }
    // A table: a header, then one row per file in the order given.
    const lines = written.join("").trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^file\s+caption$/);
    expect(lines[1]).toMatch(new RegExp(`^${files[0]}\\s+\\S`));
    expect(lines[2]).toMatch(new RegExp(`^${files[1]}\\s+\\S`));
  });

  async function waitForBatch(id: string) {
    for (let i = 0; i < 1500; i++) {
      const res = await app.inject({ method: "GET", url: `/v1/caption-jobs/${id}` });
      const body = res.json();
      if (body.status === "done" || body.status === "failed") return body;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`caption job ${id} neither done nor failed after 1500 polls`);
  }
});
