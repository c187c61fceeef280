import { describe, expect, it } from "vitest";
import { createQueue, createRedis, keys, readDatasetInfo } from "@capflow/common";
import { ingestDataset } from "@capflow/ingest";
import { sweepExpired } from "@capflow/api";
import { freePortOnLoopback, usedMemory } from "./support.ts";
import { drawImage, writeJsonlDataset } from "../support/images.ts";
import { freshPrefix, redisUrl, tempDir } from "../support/services.ts";
import { apiHarness, postImage } from "../support/api-server.ts";

const IMAGE_KEY = `images/${"a".repeat(64)}.png`;

/** Ingests `n` drawn images one per shard (no workers run: only the store and the jobs matter). */
async function ingestShards(store: Parameters<typeof ingestDataset>[0], dataset: string, n: number) {
  const conn = createRedis(redisUrl(), "producer");
  const queue = createQueue("features", { connection: conn, prefix: freshPrefix() });
  try {
    const dir = await writeJsonlDataset(await tempDir("ds"), n);
    await ingestDataset(store, queue, {
      dataset,
      format: "jsonl-folder",
      dir,
      shardSize: 1,
      onError: "fail",
    });
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
    conn.disconnect();
  }
}

describe("security: API limits (issue findings 1, 2, 4, 5, 6, 8, 10, 11)", () => {
  // A deep queue: a flood here must be refused by the limit under test, never by queue_full.
  const h = apiHarness({ config: { maxQueueDepth: 100_000 } });

  it("finding 1: 500 requests naming distinct models answer 404 and enqueue nothing", async () => {
    await h.start();
    const statuses = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const res = await h.app.inject({
        method: "POST",
        url: "/v1/captions",
        payload: { key: IMAGE_KEY, model: `m${i}` },
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (i === 0) expect(res.json()).toMatchObject({ error: "unknown_model" });
    }
    const raw = await h.app.inject({
      method: "POST",
      url: "/v1/captions?model=other",
      headers: { "content-type": "image/png" },
      payload: await drawImage(1),
    });
    const bulk = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "any", model: "other" },
    });
    const captions = createQueue("captions", { connection: h.conn, prefix: h.prefix });
    const counts = await captions.getJobCounts();
    await captions.close();
    console.warn(`finding 1: statuses ${JSON.stringify([...statuses])}, jobs ${JSON.stringify(counts)}`);
    expect([...statuses]).toEqual([[404, 500]]);
    expect(raw.statusCode).toBe(404);
    expect(bulk.statusCode).toBe(404);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("finding 2: a flood of 200 bulk submissions gets 429s and Redis memory stays under 1 MiB more", async () => {
    await ingestShards(h.store, "flood", 29);
    await h.start();
    const before = await usedMemory(h.conn);
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await h.app.inject({
        method: "POST",
        url: "/v1/caption-jobs",
        payload: { dataset: "flood" },
      });
      statuses.push(res.statusCode);
    }
    const after = await usedMemory(h.conn);
    const bulk = createQueue("caption-bulk", { connection: h.conn, prefix: h.prefix });
    const jobs = await bulk.count();
    await bulk.close();
    const accepted = statuses.filter((s) => s === 202).length;
    const refused = statuses.filter((s) => s === 429).length;
    const growth = after - before;
    console.warn(
      `finding 2: ${accepted} x 202, ${refused} x 429, ${jobs} caption-bulk jobs, Redis +${(growth / 1024).toFixed(0)} KiB`,
    );
    expect(accepted).toBe(2); // CAPFLOW_BULK_MAX_IN_FLIGHT_PER_DATASET
    expect(refused).toBe(198);
    expect(jobs).toBe(2 * 29);
    expect(growth).toBeLessThan(1024 * 1024);

    // Rows: a batch larger than the bound is refused before any job exists.
    await h.app.close();
    await h.start({ bulk: { maxImages: 10 } });
    const big = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "flood" },
    });
    expect(big.statusCode).toBe(413);
    expect((await readDatasetInfo(h.store, "flood")).images).toBe(29);
  });

  it("finding 4: with only an API key, /admin reads are refused and /metrics needs a key", async () => {
    const apiKey = "k".repeat(24);
    await h.start({ apiKey });
    const reads = await Promise.all(
      ["/admin/queues/api/queues", "/admin/queues/api/redis/stats", "/admin/api/queues", "/admin/queues"].map(
        (url) => h.app.inject({ method: "GET", url }),
      ),
    );
    const withApiKey = await h.app.inject({
      method: "GET",
      url: "/admin/queues/api/queues",
      headers: { "x-api-key": apiKey },
    });
    const metricsOpen = await h.app.inject({ method: "GET", url: "/metrics" });
    const metricsKeyed = await h.app.inject({
      method: "GET",
      url: "/metrics",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    console.warn(
      `finding 4: /admin reads ${reads.map((r) => r.statusCode).join(",")}, with API key ${withApiKey.statusCode}; /metrics ${metricsOpen.statusCode} open, ${metricsKeyed.statusCode} keyed`,
    );
    for (const r of reads) {
      expect(r.statusCode).toBe(403);
      expect(r.body).not.toContain("redis_version");
    }
    expect(withApiKey.statusCode).toBe(403);
    expect(metricsOpen.statusCode).toBe(401);
    expect(metricsKeyed.statusCode).toBe(200);
  });

  it("finding 5: a URL on a closed port answers 502 fetch_failed, never redis_unavailable", async () => {
    await h.start({ urlFetch: { maxBytes: 1024 * 1024, timeoutMs: 2_000, allowPrivate: true } });
    const port = await freePortOnLoopback();
    const rejected = async (reason: string) => {
      const text = (await h.app.inject({ method: "GET", url: "/metrics" })).body;
      const m = new RegExp(`capflow_api_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
      return m ? Number(m[1]) : 0;
    };
    const redisBefore = await rejected("redis_unavailable");
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      payload: { url: `http://127.0.0.1:${port}/x.png` },
    });
    const redisAfter = await rejected("redis_unavailable");
    expect(await rejected("fetch_failed")).toBeGreaterThan(0);
    console.warn(`finding 5: closed port → ${res.statusCode} ${res.body}`);
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toBe("fetch_failed");
    expect(res.headers["retry-after"]).toBeUndefined();
    expect(redisAfter).toBe(redisBefore);
  });

  it("finding 6: datasets named . and .. are 400 bad_request, not 500", async () => {
    await h.start();
    const codes: number[] = [];
    for (const dataset of [".", "..", ".hidden", "a/b"]) {
      const res = await h.app.inject({ method: "POST", url: "/v1/caption-jobs", payload: { dataset } });
      codes.push(res.statusCode);
    }
    const conn = createRedis(redisUrl(), "producer");
    const queue = createQueue("features", { connection: conn, prefix: freshPrefix() });
    const ingest = ingestDataset(h.store, queue, {
      dataset: "..",
      format: "jsonl-folder",
      dir: await tempDir("none"),
      shardSize: 1,
      onError: "fail",
    });
    await expect(ingest).rejects.toThrow(/dataset name/);
    await queue.close();
    conn.disconnect();
    console.warn(`finding 6: . .. .hidden a/b → ${codes.join(",")}`);
    expect(codes).toEqual([400, 400, 400, 400]);
  });

  it("finding 8: a refused address and an unresolvable name get the same answer, naming no address", async () => {
    await h.start();
    const answers = [];
    for (const url of [
      "http://localhost/x.png",
      "http://10.0.0.1/x.png",
      "http://no-such-host.invalid/x.png",
    ]) {
      const res = await h.app.inject({ method: "POST", url: "/v1/captions", payload: { url } });
      answers.push({ status: res.statusCode, body: res.json() as { error: string; message: string } });
    }
    console.warn(`finding 8: ${JSON.stringify(answers.map((a) => [a.status, a.body.message]))}`);
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]!.body.error).toBe("refused_address");
    for (const a of answers)
      expect(a.body.message).not.toMatch(/127\.0\.0\.1|::1|10\.0\.0\.1|resolve|localhost/);
  });

  it("finding 10: a cross-origin admin POST carrying the admin cookie is refused and pauses nothing", async () => {
    const adminKey = "a".repeat(24);
    await h.start({ adminKey });
    const features = createQueue("features", { connection: h.conn, prefix: h.prefix });
    const forged = await h.app.inject({
      method: "POST",
      url: "/admin/api/queues/features/pause",
      headers: {
        cookie: `capflow_admin_key=${adminKey}`,
        "content-type": "text/plain",
        origin: "http://evil.example",
        host: "capflow.internal:8080",
      },
      payload: "x",
    });
    const pausedAfterForgery = await features.isPaused();
    const sameOrigin = await h.app.inject({
      method: "POST",
      url: "/admin/api/queues/features/pause",
      headers: {
        cookie: `capflow_admin_key=${adminKey}`,
        origin: "http://capflow.internal:8080",
        host: "capflow.internal:8080",
      },
    });
    const byHeader = await h.app.inject({
      method: "POST",
      url: "/admin/api/queues/features/resume",
      headers: { "x-capflow-admin-key": adminKey },
    });
    console.warn(
      `finding 10: cross-origin ${forged.statusCode} (paused: ${pausedAfterForgery}), same-origin ${sameOrigin.statusCode}, header ${byHeader.statusCode}`,
    );
    expect(forged.statusCode).toBe(403);
    expect(pausedAfterForgery).toBe(false);
    expect(sameOrigin.statusCode).toBe(200);
    expect(byHeader.statusCode).toBe(200);
    await features.close();
  });

  it("finding 11: an expired batch's objects and old uploads are gone after the sweep; dataset images stay", async () => {
    await ingestShards(h.store, "kept", 3);
    await h.start();
    const upload = await postImage(h.app, await drawImage(5));
    expect(upload.statusCode).toBe(202);
    const submit = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "kept" },
    });
    const { id } = submit.json() as { id: string };
    const list = async (prefix: string) => {
      const out: string[] = [];
      for await (const o of h.store.list(prefix)) out.push(o.key);
      return out;
    };
    const policy = { uploadTtlMs: 24 * 3_600_000, batchTtlMs: 7 * 24 * 3_600_000 };
    const early = await sweepExpired(h.store, policy, { now: Date.now() + 3_600_000 });
    expect(early.objectsDeleted).toBe(0);
    const before = { uploads: await list("uploads/"), batch: await list(`captions/${id}/`) };
    const swept = await sweepExpired(h.store, policy, { now: Date.now() + 8 * 24 * 3_600_000 });
    const after = { uploads: await list("uploads/"), batch: await list(`captions/${id}/`) };
    const status = await h.app.inject({ method: "GET", url: `/v1/caption-jobs/${id}` });
    console.warn(
      `finding 11: before uploads ${before.uploads.length}, batch objects ${before.batch.length}; after ${after.uploads.length}, ${after.batch.length} (${swept.objectsDeleted} deleted)`,
    );
    expect(before.uploads.length).toBe(1);
    expect(before.batch.length).toBeGreaterThan(0);
    expect(after).toEqual({ uploads: [], batch: [] });
    expect(swept.batchesExpired).toEqual([id]);
    expect(status.statusCode).toBe(404);
    expect((await list("images/")).length).toBe(3);
    expect(await h.store.head(keys.datasetInfo("kept"))).toBeDefined();
  });
});
