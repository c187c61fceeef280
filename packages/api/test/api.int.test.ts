import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createQueue, createRedis, createWorker, keys, registry } from "@capflow/common";
import { fetchUrl } from "../src/fetch-url.ts";
import { redisUrl } from "../../../test/support/services.ts";
import { apiHarness, postImage } from "../../../test/support/api-server.ts";
import { drawImage } from "../../../test/support/images.ts";
import { waitFor } from "../../../test/support/wait-for.ts";

describe("HTTP API: edges", () => {
  const h = apiHarness({ admin: false });

  it("accepts a raw image upload, stores it by content and answers 202 with a job id to poll", async () => {
    await h.start();
    const png = await drawImage(1);
    const res = await postImage(h.app, png);
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({ status: "queued", poll: `/v1/captions/${body.id}` });
    const poll = await h.app.inject({ method: "GET", url: body.poll });
    expect(poll.statusCode).toBe(200);
    expect(poll.json()).toMatchObject({ id: body.id, status: "queued" });
    const queue = createQueue("captions", { connection: h.conn, prefix: h.prefix });
    const job = await queue.getJob(body.id);
    expect(job?.data).toMatchObject({
      kind: "image",
      imageKey: expect.stringMatching(/^uploads\/\d{10}\/[0-9a-f]{64}\.png$/),
      model: "default",
    });
    expect(await h.store.head(job!.data.imageKey)).toBeDefined();
    await queue.close();
  });

  it("shares one job between identical requests (multipart, raw and by key)", async () => {
    await h.start();
    const png = await drawImage(2);
    const boundary = "----capflow";
    const multipartBody = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`,
      ),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const [a, b] = await Promise.all([
      h.app.inject({
        method: "POST",
        url: "/v1/captions",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        payload: multipartBody,
      }),
      h.app.inject({
        method: "POST",
        url: "/v1/captions",
        headers: { "content-type": "application/octet-stream" },
        payload: png,
      }),
    ]);
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(a.json().id).toBe(b.json().id);
    const queue = createQueue("captions", { connection: h.conn, prefix: h.prefix });
    const job = await queue.getJob(a.json().id);
    const byKey = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      payload: { key: (job!.data as { imageKey: string }).imageKey },
    });
    expect(byKey.json().id).toBe(a.json().id);
    const beam = await h.app.inject({
      method: "POST",
      url: "/v1/captions?method=beam&beamWidth=4",
      headers: { "content-type": "image/png" },
      payload: png,
    });
    expect(beam.json().id).not.toBe(a.json().id);
    expect(await queue.count()).toBe(2);
    await queue.close();
  });

  it("answers 400 naming the field for bad bodies", async () => {
    await h.start();
    const cases: Array<[unknown, string]> = [
      [{}, "key"],
      [{ key: "images/abc.png" }, "key"],
      [{ key: `images/${"a".repeat(64)}.png`, url: "https://example.com/x.png" }, "key"],
      [{ url: "https://example.com/x.png", method: "sideways" }, "method"],
      [{ url: "https://example.com/x.png", beamWidth: 99 }, "beamWidth"],
      [{ url: "https://example.com/x.png", model: "../../etc" }, "model"],
      [{ url: "https://example.com/x.png", extra: 1 }, ""],
    ];
    for (const [payload, field] of cases) {
      const res = await h.app.inject({ method: "POST", url: "/v1/captions", payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error).toBe("bad_request");
      expect(res.json().message).toContain(field);
    }
    const notJson = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      headers: { "content-type": "application/json" },
      payload: "{oops",
    });
    expect(notJson.statusCode).toBe(400);
    const bulk = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "a/b", split: "dev" },
    });
    expect(bulk.statusCode).toBe(400);
    expect(
      bulk
        .json()
        .issues.map((i: { path: string }) => i.path)
        .sort(),
    ).toEqual(["dataset", "split"]);
    const text = await postImage(h.app, Buffer.from("not an image"));
    expect(text.statusCode).toBe(415);
  });

  it("answers 404 for a key that names no stored image, and for unknown ids", async () => {
    await h.start();
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      payload: { key: `images/${"0".repeat(64)}.png` },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toContain("no image stored");
    expect((await h.app.inject({ method: "GET", url: "/v1/captions/img.nope" })).statusCode).toBe(404);
    expect((await h.app.inject({ method: "GET", url: "/v1/caption-jobs/bnope123" })).statusCode).toBe(404);
    const bulk = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "never-ingested" },
    });
    expect(bulk.statusCode).toBe(404);
  });

  it("answers 413 beyond the body limit (raw, multipart and JSON)", async () => {
    await h.start({ maxBodyBytes: 64 * 1024 });
    const big = Buffer.concat([await drawImage(3), Buffer.alloc(100 * 1024)]);
    const raw = await postImage(h.app, big);
    expect(raw.statusCode).toBe(413);
    expect(raw.json().error).toBe("too_large");
    const boundary = "----capflow";
    const mp = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      payload: Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n`,
        ),
        big,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]),
    });
    expect(mp.statusCode).toBe(413);
    const json = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      payload: { url: `https://example.com/${"a".repeat(70_000)}` },
    });
    expect(json.statusCode).toBe(413);
  });

  it("requires the API key on /v1 and /metrics when one is configured, but not on health or the document", async () => {
    await h.start({ apiKey: "k".repeat(32) });
    const png = await drawImage(4);
    const post = (headers: Record<string, string>) => postImage(h.app, png, headers);
    expect((await post({})).statusCode).toBe(401);
    expect((await post({ "x-api-key": "wrong" })).statusCode).toBe(401);
    expect((await post({ authorization: `Bearer ${"k".repeat(31)}x` })).statusCode).toBe(401);
    expect((await h.app.inject({ method: "GET", url: "/v1/caption-jobs/b123456" })).statusCode).toBe(401);
    expect((await post({ "x-api-key": "k".repeat(32) })).statusCode).toBe(202);
    expect((await post({ authorization: `Bearer ${"k".repeat(32)}` })).statusCode).toBe(202);
    for (const url of ["/healthz", "/readyz", "/openapi.json"]) {
      expect((await h.app.inject({ method: "GET", url })).statusCode, url).toBe(200);
    }
    // Once a key is set, /metrics needs one too (docs/security.md, the access table).
    expect((await h.app.inject({ method: "GET", url: "/metrics" })).statusCode).toBe(401);
    const keyed = await h.app.inject({
      method: "GET",
      url: "/metrics",
      headers: { authorization: `Bearer ${"k".repeat(32)}` },
    });
    expect(keyed.statusCode).toBe(200);
  });

  it("refuses new work with 429 and Retry-After when the queue is full, without growing it", async () => {
    await h.start({ maxQueueDepth: 10 });
    const queue = createQueue("captions", { connection: h.conn, prefix: h.prefix });
    // No worker: fill the queue past the limit directly.
    for (let i = 0; i < 10; i++) {
      await queue.add(
        "image",
        { kind: "image", requestId: `fill-${i}`, imageKey: `images/${String(i).padStart(64, "0")}.png` },
        { priority: 1 },
      );
    }
    await new Promise((r) => setTimeout(r, 300)); // let the cached depth expire
    const images = await Promise.all(Array.from({ length: 50 }, (_, i) => drawImage(100 + i)));
    const answers = await Promise.all(images.map((png) => postImage(h.app, png)));
    for (const res of answers) {
      expect(res.statusCode).toBe(429);
      expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(res.json().error).toBe("queue_full");
    }
    expect(await queue.count()).toBe(10);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/capflow_api_rejected_total\{reason="queue_full"[^}]*\} \d+/);
    expect(metrics).toMatch(/capflow_api_requests_total\{route="\/v1\/captions",status="429"[^}]*\} \d+/);
    await queue.close();
  });

  it("does not count waiting bulk shards against single requests", async () => {
    await h.start({ maxQueueDepth: 10 });
    const queue = createQueue("caption-bulk", { connection: h.conn, prefix: h.prefix });
    for (let i = 0; i < 30; i++) {
      await queue.add("bulk-shard", {
        kind: "bulk-shard",
        batchId: "bfill",
        dataset: "d",
        shardId: `s${i}`,
        shardKey: `datasets/d/shards/s${i}.json`,
      });
    }
    const res = await postImage(h.app, await drawImage(9));
    expect(res.statusCode).toBe(202);
    await queue.close();
  });

  it("counts the online jobs workers hold active, not the bulk shards they hold", async () => {
    await h.start({ maxQueueDepth: 10 });
    const queue = createQueue("captions", { connection: h.conn, prefix: h.prefix });
    const bulkQueue = createQueue("caption-bulk", { connection: h.conn, prefix: h.prefix });
    // Workers that take jobs and never finish them: what busy caption workers look like.
    const conns = [createRedis(redisUrl(), "worker"), createRedis(redisUrl(), "worker")];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const workers = [
      createWorker("captions", () => held, { connection: conns[0]!, prefix: h.prefix, concurrency: 20 }),
      createWorker("caption-bulk", () => held, { connection: conns[1]!, prefix: h.prefix, concurrency: 20 }),
    ];
    const post = async (seed: number) => postImage(h.app, await drawImage(seed));
    try {
      for (let i = 0; i < 10; i++)
        await bulkQueue.add("bulk-shard", {
          kind: "bulk-shard",
          batchId: "bheld",
          dataset: "d",
          shardId: `s${i}`,
          shardKey: `datasets/d/shards/s${i}.json`,
        });
      await waitFor("10 bulk shards active", async () => (await bulkQueue.getActiveCount()) === 10);
      await new Promise((r) => setTimeout(r, 300)); // let the cached depth expire
      expect((await post(200)).statusCode).toBe(202); // ten bulk shards active: not counted

      for (let i = 0; i < 9; i++)
        await queue.add("image", {
          kind: "image",
          requestId: `held-${i}`,
          imageKey: `images/${String(i).padStart(64, "0")}.png`,
        });
      // 9 held here + the one accepted above = 10 online jobs active, none waiting.
      await waitFor("10 online captions active", async () => (await queue.getActiveCount()) === 10);
      expect(await queue.getWaitingCount()).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const res = await post(201);
      expect(res.statusCode).toBe(429);
      expect(res.json().error).toBe("queue_full");
    } finally {
      release();
      for (const w of workers) await w.close();
      for (const c of conns) c.disconnect();
      await queue.close();
      await bulkQueue.close();
    }
  });

  it("answers 503 with Retry-After, not a hang, when Redis is unreachable", async () => {
    await h.start();
    h.conn.disconnect();
    const res = await postImage(h.app, await drawImage(10));
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect((await h.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(503);
    h.conn = createRedis(redisUrl(), "producer"); // for the cleanup
  });

  it("serves an OpenAPI 3.1 document listing every route with JSON schemas", async () => {
    await h.start();
    const res = await h.app.inject({ method: "GET", url: "/openapi.json" });
    const doc = JSON.parse(res.body);
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/readyz",
        "/v1/caption-jobs",
        "/v1/caption-jobs/{id}",
        "/v1/caption-jobs/{id}/results",
        "/v1/caption-jobs/{id}/retry",
        "/v1/captions",
        "/v1/captions/{id}",
      ].sort(),
    );
    const bulkSchema = doc.paths["/v1/caption-jobs"].post.requestBody.content["application/json"].schema;
    expect(bulkSchema.required).toEqual(["dataset"]);
    expect(bulkSchema.properties.split.enum).toEqual(["train", "val", "test"]);
  });

  it("keeps metric labels bounded: route patterns, not URLs", async () => {
    await h.start();
    for (let i = 0; i < 5; i++)
      await h.app.inject({ method: "GET", url: `/v1/captions/img.${"0".repeat(39)}${i}` });
    await h.app.inject({ method: "GET", url: `/no/such/${Math.random()}` });
    const metrics = await registry.metrics();
    expect(metrics).toContain('route="/v1/captions/:id"');
    expect(metrics).not.toMatch(/route="\/v1\/captions\/img\./);
    expect(metrics).not.toMatch(/route="\/no\/such/);
  });
});

describe("HTTP API: URL fetching refuses internal addresses", () => {
  const h = apiHarness({ admin: false });

  it.each([
    ["http://127.0.0.1/x.png", "loopback"],
    ["http://localhost/x.png", "loopback by name"],
    ["http://[::1]/x.png", "v6 loopback"],
    ["http://10.0.0.1/x.png", "private 10/8"],
    ["http://172.16.5.5/x.png", "private 172.16/12"],
    ["http://192.168.1.1/x.png", "private 192.168/16"],
    ["http://169.254.169.254/latest/meta-data/", "cloud metadata"],
    ["http://100.64.0.1/x.png", "CGNAT"],
    ["http://0.0.0.0/x.png", "unspecified"],
    ["http://[fd00::1]/x.png", "v6 unique local"],
    ["http://[fe80::1]/x.png", "v6 link-local"],
    ["http://[::ffff:169.254.169.254]/", "IPv4-mapped metadata"],
    ["http://2130706433/x.png", "decimal loopback"],
    ["http://0x7f.1/x.png", "hex loopback"],
    ["http://0177.0.0.1/x.png", "octal loopback"],
    ["http://127.1/x.png", "short loopback"],
    ["http://0xa9fea9fe/", "hex metadata"],
  ])("%s (%s) → 400 refused_address", async (url) => {
    await h.start();
    const res = await h.app.inject({ method: "POST", url: "/v1/captions", payload: { url } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe("refused_address");
  });

  it("refuses non-http schemes", async () => {
    await h.start();
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/captions",
      payload: { url: "file:///etc/passwd" },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe("bad_url");
  });

  describe("against a loopback image server", () => {
    let server: http.Server;
    let base = "";
    let png: Buffer;
    beforeEach(async () => {
      png = await drawImage(7);
      server = http.createServer((req, res) => {
        const url = new URL(req.url!, "http://x");
        if (url.pathname === "/img.png") res.writeHead(200, { "content-type": "image/png" }).end(png);
        else if (url.pathname === "/big") res.writeHead(200).end(Buffer.alloc(200_000));
        else if (url.pathname === "/slow") res.writeHead(200).write("a");
        else if (url.pathname === "/redirect")
          res.writeHead(302, { location: url.searchParams.get("to")! }).end();
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    // Only the test server's exact address is allowed; everything else is judged as in production.
    const onlyTestServer = (over: { maxBytes?: number; timeoutMs?: number } = {}) => ({
      fetchImage: (url: string) =>
        fetchUrl(url, {
          maxBytes: 100_000,
          timeoutMs: 1_000,
          ...over,
          isAllowed: (a: string) => a === "127.0.0.1",
        }),
    });

    it("fetches an allowed URL and captions it", async () => {
      await h.start({}, onlyTestServer());
      const res = await h.app.inject({
        method: "POST",
        url: "/v1/captions",
        payload: { url: `${base}/img.png` },
      });
      expect(res.statusCode).toBe(202);
    });

    it.each([
      "http://169.254.169.254/latest/meta-data/",
      "http://127.0.0.2/",
      "http://2130706434/",
      "http://[::1]/",
      "http://192.168.0.1/",
    ])("refuses a redirect to %s", async (to) => {
      await h.start({}, onlyTestServer());
      const res = await h.app.inject({
        method: "POST",
        url: "/v1/captions",
        payload: { url: `${base}/redirect?to=${encodeURIComponent(to)}` },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe("refused_address");
    });

    it("caps size (413) and time (504)", async () => {
      await h.start({}, onlyTestServer({ timeoutMs: 300 }));
      const big = await h.app.inject({
        method: "POST",
        url: "/v1/captions",
        payload: { url: `${base}/big` },
      });
      expect(big.statusCode).toBe(413);
      expect(big.json().error).toBe("too_large");
      const slow = await h.app.inject({
        method: "POST",
        url: "/v1/captions",
        payload: { url: `${base}/slow` },
      });
      expect(slow.statusCode).toBe(504);
      expect(slow.json().error).toBe("timeout");
    });

    it("reaches loopback only when CAPFLOW_URL_ALLOW_PRIVATE is on", async () => {
      await h.start({ urlFetch: { maxBytes: 100_000, timeoutMs: 1_000, allowPrivate: false } });
      expect(
        (await h.app.inject({ method: "POST", url: "/v1/captions", payload: { url: `${base}/img.png` } }))
          .statusCode,
      ).toBe(400);
      await h.app.close();
      await h.start({ urlFetch: { maxBytes: 100_000, timeoutMs: 1_000, allowPrivate: true } });
      expect(
        (await h.app.inject({ method: "POST", url: "/v1/captions", payload: { url: `${base}/img.png` } }))
          .statusCode,
      ).toBe(202);
    });
  });
});

describe("HTTP API: bulk jobs without a worker", () => {
  const h = apiHarness({ admin: false });

  const tinyInfo = (shards: string[], shardSplits?: Array<[number, number, number]>) => ({
    name: "tiny",
    format: "jsonl-folder",
    images: shards.length * 2,
    captions: shards.length * 4,
    splits: { train: shards.length, val: 0, test: shards.length },
    shards,
    shardSize: 2,
    ...(shardSplits ? { shardSplits } : {}),
  });

  it("enqueues only the shards holding the split, reports progress, cancels the waiting ones", async () => {
    await h.start();
    const info = tinyInfo(
      ["sa", "sb", "sc"],
      [
        [2, 0, 0],
        [1, 0, 1],
        [1, 0, 1],
      ],
    );
    await h.store.put(keys.datasetInfo("tiny"), JSON.stringify(info));
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "tiny", split: "test" },
    });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    expect(res.json()).toMatchObject({ shards: 2, images: 2 });
    const queue = createQueue("caption-bulk", { connection: h.conn, prefix: h.prefix });
    expect(await queue.getJob(`caption.${id}.sa`)).toBeUndefined();
    const job = await queue.getJob(`caption.${id}.sb`);
    expect(job?.data).toMatchObject({
      kind: "bulk-shard",
      batchId: id,
      shardId: "sb",
      split: "test",
      shardKey: "datasets/tiny/shards/sb.json",
    });
    const status = await h.app.inject({ method: "GET", url: `/v1/caption-jobs/${id}` });
    expect(status.json()).toMatchObject({
      id,
      status: "queued",
      shards: { total: 2, waiting: 2, done: 0 },
      images: 2,
      captioned: 0,
    });
    const results = await h.app.inject({ method: "GET", url: `/v1/caption-jobs/${id}/results` });
    expect(results.statusCode).toBe(409);
    const cancelled = await h.app.inject({ method: "DELETE", url: `/v1/caption-jobs/${id}` });
    expect(cancelled.json()).toMatchObject({ status: "cancelled", shards: { waiting: 0, failed: 0 } });
    expect(await queue.count()).toBe(0);
    expect((await h.app.inject({ method: "POST", url: `/v1/caption-jobs/${id}/retry` })).statusCode).toBe(
      409,
    );
    await queue.close();
  });

  it("asks for a re-ingest before a split job on a dataset without per-shard splits", async () => {
    await h.start();
    await h.store.put(keys.datasetInfo("tiny"), JSON.stringify(tinyInfo(["sa", "sb"])));
    const split = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "tiny", split: "test" },
    });
    expect(split.statusCode).toBe(409);
    expect(split.json()).toMatchObject({ error: "needs_reingest" });
    const whole = await h.app.inject({
      method: "POST",
      url: "/v1/caption-jobs",
      payload: { dataset: "tiny" },
    });
    expect(whole.json()).toMatchObject({ shards: 2, images: 4 });
  });

  it("polls a batch's status with the same number of Redis commands for 3 shards and for 600", async () => {
    await h.start();
    const probe = createRedis(redisUrl(), "producer");
    // Commands the server processed between two INFO calls, minus the second INFO itself. The
    // integration project runs its files one at a time, so nothing else talks to this Redis.
    const processed = async () =>
      Number(/total_commands_processed:(\d+)/.exec(await probe.info("stats"))![1]);
    const perPoll = async (shards: number) => {
      const dataset = `tiny${shards}`;
      const ids = Array.from({ length: shards }, (_, i) => `s${i}`);
      await h.store.put(keys.datasetInfo(dataset), JSON.stringify({ ...tinyInfo(ids), name: dataset }));
      const res = await h.app.inject({ method: "POST", url: "/v1/caption-jobs", payload: { dataset } });
      const { id } = res.json();
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const before = await processed();
        const status = await h.app.inject({ method: "GET", url: `/v1/caption-jobs/${id}` });
        counts.push((await processed()) - before - 1);
        expect(status.json().shards).toMatchObject({ total: shards, waiting: shards });
      }
      return Math.max(...counts);
    };
    try {
      const small = await perPoll(3);
      const large = await perPoll(600);
      expect(small).toBeGreaterThan(0);
      expect(large).toBe(small);
      // Before the counters, a poll did getJob + getState per shard: 1,200+ commands for 600 shards.
      expect(large).toBeLessThan(20);
    } finally {
      probe.disconnect();
    }
  });
});
