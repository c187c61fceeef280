import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import pino from "pino";
import { createRedis, LocalStore, putJson, readShardIndex, type ShardList } from "@capflow/common";
import { PIXELS_PER_IMAGE, type Encoder } from "@capflow/ml";
import { createFeatureWorker, extractFeatures, LostJobError } from "../src/jobs/extract-features.ts";
import { journalKey, redisCrashJournal } from "../src/crash-journal.ts";
import { IsolationGate } from "../src/isolation-gate.ts";
import type { CrashRecord } from "../src/crash-isolation.ts";
import { freshPrefix, redisUrl, tempDir } from "../../../test/support/services.ts";
import { drawImage } from "../../../test/support/images.ts";

// The isolation logic against real Redis, in one process: a "death" is an attempt abandoned while a
// read of the poison image hangs forever (nothing after it runs, as after SIGABRT: no catch, no
// finally), and the next attempt is a fresh call with a fresh gate, as in a restarted process.
// A stand-in encoder keeps it fast; the real one runs in test/reliability/poison-pill.int.test.ts.

const fakeEncoder: Encoder = {
  id: "fake-enc",
  dim: 4,
  runtime: "onnx",
  backend: "fake",
  encode(batch, n) {
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) out.fill(batch[i * PIXELS_PER_IMAGE + 7]!, i * 4, (i + 1) * 4);
    return Promise.resolve(out);
  },
  dispose: () => Promise.resolve(),
};

const redis = createRedis(redisUrl(), "worker");
const log = pino({ level: "silent" });
const never = new Promise<Buffer>(() => undefined);

describe("crash isolation of a features job", () => {
  let store: LocalStore;
  let shard: ShardList;
  const dataset = "drawn";
  // One shard list per test (same images): a committed shard would make the next test a no-op.
  let shardId = "";
  let data = { dataset, shardId, shardKey: "" };

  beforeAll(async () => {
    store = new LocalStore(await tempDir("isolation"));
    const images: ShardList["images"] = [];
    for (let i = 0; i < 12; i++) {
      const key = `images/img${i}.png`;
      await store.put(key, await drawImage(i));
      images.push({ id: `img${i}`, key });
    }
    shard = { dataset, shardId, images };
  });
  beforeEach(async () => {
    shardId = `s${randomUUID().slice(0, 8)}`;
    data = { dataset, shardId, shardKey: `datasets/${dataset}/shards/${shardId}.json` };
    await putJson(store, data.shardKey, { ...shard, shardId });
  });
  afterAll(() => redis.disconnect());

  /** A store whose reads of `hang` keys never finish; `reads` records every key read. */
  function storeWith(hang: (key: string) => boolean, reads: string[] = []): LocalStore {
    const s = Object.create(store) as LocalStore;
    s.get = (key: string) => {
      reads.push(key);
      return hang(key) ? never : store.get(key);
    };
    return s;
  }

  function attempt(prefix: string, jobId: string, s: LocalStore, stalledCounter: number) {
    return extractFeatures(
      {
        store: s,
        encoder: fakeEncoder,
        connection: redis,
        prefix,
        log,
        batchSize: 2,
        concurrency: 1,
        dtype: "float32",
        maxPixels: 50_000_000,
        journal: redisCrashJournal(redis, prefix),
        gate: new IsolationGate(),
      },
      data,
      { id: jobId, stalledCounter },
      () => Promise.resolve(),
      new AbortController().signal,
    );
  }

  async function record(prefix: string, jobId: string): Promise<CrashRecord | undefined> {
    const raw = await redis.hget(journalKey(prefix, jobId), "record");
    return raw ? (JSON.parse(raw) as CrashRecord) : undefined;
  }

  /** Runs an attempt until it reads a poison image, then abandons it (the process "died"). */
  async function dies(prefix: string, jobId: string, poison: string[], stalledCounter: number) {
    const reads: string[] = [];
    const s = storeWith((k) => poison.some((p) => k.includes(`/${p}.`)), reads);
    void attempt(prefix, jobId, s, stalledCounter).catch(() => undefined);
    for (let t = 0; t < 500 && !reads.some((k) => poison.some((p) => k.includes(`/${p}.`))); t++)
      await new Promise((r) => setTimeout(r, 10));
    const rec = await record(prefix, jobId);
    expect(rec?.open).toBe(true);
    return rec!;
  }

  it("quarantines the poison image after 3 deaths and encodes the rest of its shard", async () => {
    const prefix = freshPrefix();
    const jobId = "features.drawn.s0";
    const deaths: CrashRecord[] = [];
    deaths.push(await dies(prefix, jobId, ["img5"], 0)); // in a batch
    deaths.push(await dies(prefix, jobId, ["img5"], 1)); // alone
    deaths.push(await dies(prefix, jobId, ["img5"], 2)); // alone again, first of its attempt
    expect(deaths[0]).toMatchObject({ alone: false, deaths: 0 });
    expect(deaths[0]!.inflight).toContain("img5");
    expect(deaths[1]).toMatchObject({ alone: true, inflight: ["img5"], deaths: 1 });
    expect(deaths[2]).toMatchObject({ alone: true, inflight: ["img5"], deaths: 2, strikes: { img5: 1 } });
    // The suspects of death 1 ran alone before img5 was reached: the good ones were cleared.
    expect(deaths[1]!.suspects.length).toBeLessThan(deaths[0]!.inflight.length);

    const reads: string[] = [];
    const out = await attempt(
      prefix,
      jobId,
      storeWith(() => false, reads),
      3,
    );
    expect(out).toMatchObject({ vectors: 11, failures: 1, crashedWorker: 1 });
    expect(reads.some((k) => k.includes("/img5."))).toBe(false);
    const index = await readShardIndex(store, fakeEncoder.id, dataset, shardId);
    expect(index.ids).toEqual(shard.images.map((i) => i.id).filter((id) => id !== "img5"));
    expect(index.failures).toEqual([
      {
        id: "img5",
        reason: "crashed_worker",
        message:
          "the worker process died 2 times in a row while this image was the only one in flight " +
          "(decode + encode); 3 deaths of this shard's job in all",
      },
    ]);
    // A clean end deletes the record.
    expect(await redis.exists(journalKey(prefix, jobId))).toBe(0);
  });

  it("quarantines nothing after deaths that were not an image's fault (kill, pause)", async () => {
    const prefix = freshPrefix();
    const jobId = "features.drawn.s0.stall";
    // A death mid-batch (say SIGKILL), then one while a good image ran alone (say the OOM killer).
    await dies(prefix, jobId, ["img2"], 0);
    const second = await dies(prefix, jobId, ["img3"], 1);
    expect(second).toMatchObject({ alone: true, inflight: ["img3"] });
    // Nothing crashes any more: the struck image runs alone first, survives and is cleared.
    const out = await attempt(
      prefix,
      jobId,
      storeWith(() => false),
      2,
    );
    expect(out).toMatchObject({ vectors: 12, failures: 0 });
    expect(out).not.toHaveProperty("crashedWorker");
    expect(await redis.exists(journalKey(prefix, jobId))).toBe(0);
  });

  it("counts no death after an error the process survived", async () => {
    const prefix = freshPrefix();
    const jobId = "features.drawn.s0.error";
    const failing = Object.create(store) as LocalStore;
    failing.get = (key: string) =>
      key.includes("/img4.") ? Promise.reject(new Error("ECONNRESET")) : store.get(key);
    await expect(attempt(prefix, jobId, failing, 0)).rejects.toThrow("ECONNRESET");
    expect(await record(prefix, jobId)).toMatchObject({ open: false, inflight: [], deaths: 0, suspects: [] });
    const reads: string[] = [];
    await attempt(
      prefix,
      jobId,
      storeWith(() => false, reads),
      0,
    );
    // A plain batched run: no image ran alone.
    expect(reads.filter((k) => k.startsWith("images/")).length).toBe(12);
    expect(await redis.exists(journalKey(prefix, jobId))).toBe(0);
  });

  it("stops a paused attempt that lost its job to a newer one", async () => {
    const prefix = freshPrefix();
    const jobId = "features.drawn.s0.paused";
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    const s = Object.create(store) as LocalStore;
    let reached = false;
    s.get = async (key: string) => {
      if (key.includes("/img6.")) {
        reached = true;
        await paused;
      }
      return store.get(key);
    };
    const old = attempt(prefix, jobId, s, 0);
    while (!reached) await new Promise((r) => setTimeout(r, 10));
    // The lock expired meanwhile and another worker took the job: it completes the shard.
    const out = await attempt(
      prefix,
      jobId,
      storeWith(() => false),
      1,
    );
    expect(out).toMatchObject({ vectors: 12, failures: 0 });
    release();
    await expect(old).rejects.toBeInstanceOf(LostJobError);
  });

  it("ends a shard with two poison images after the stall bound, and resumes on re-enqueue", async () => {
    const prefix = freshPrefix();
    const jobId = "features.drawn.s0.two";
    const poison = ["img1", "img8"];
    // BullMQ fails the job at its 4th stall (maxStalledCount 3): 4 deaths, then no more attempts.
    for (let d = 0; d < 4; d++) await dies(prefix, jobId, poison, d);
    const left = await record(prefix, jobId);
    expect(left?.strikes).toMatchObject({ img1: 2 });
    // `capflow reconcile` re-enqueues the failed shard under the same job id: the record carries on,
    // img1 stays quarantined and img8 needs 2 more deaths (within the new job's bound).
    expect(await dies(prefix, jobId, ["img8"], 0)).toMatchObject({ alone: true, inflight: ["img8"] });
    expect(await dies(prefix, jobId, ["img8"], 1)).toMatchObject({ alone: true, strikes: { img8: 1 } });
    const out = await attempt(
      prefix,
      jobId,
      storeWith(() => false),
      2,
    );
    expect(out).toMatchObject({ vectors: 10, failures: 2, crashedWorker: 2 });
    const index = await readShardIndex(store, fakeEncoder.id, dataset, shardId);
    expect(index.failures.map((f) => [f.id, f.reason])).toEqual([
      ["img1", "crashed_worker"],
      ["img8", "crashed_worker"],
    ]);
  });

  it("fences writes by owner, expires, and drops a record it cannot parse", async () => {
    const prefix = freshPrefix();
    const journal = redisCrashJournal(redis, prefix, 60_000);
    const rec: CrashRecord = {
      open: true,
      deaths: 0,
      inflight: ["a"],
      alone: false,
      suspects: [],
      strikes: {},
    };
    expect(await journal.claim("j", "one")).toBeUndefined();
    expect(await journal.write("j", "one", rec)).toBe(true);
    expect(await journal.claim("j", "two")).toEqual(rec);
    expect(await journal.write("j", "one", { ...rec, inflight: ["b"] })).toBe(false);
    const ttl = await redis.pttl(journalKey(prefix, "j"));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await journal.clear("j", "one");
    expect(await redis.exists(journalKey(prefix, "j"))).toBe(1);
    await journal.clear("j", "two");
    expect(await redis.exists(journalKey(prefix, "j"))).toBe(0);
    await redis.hset(journalKey(prefix, "k"), "record", '{"open":"yes"}');
    expect(await journal.claim("k", "x")).toBeUndefined();
    await redis.del(journalKey(prefix, "k"));
  });

  it("gives features workers a stall bound of 3 from the job catalog", async () => {
    const connection = createRedis(redisUrl(), "worker");
    const worker = createFeatureWorker({
      store,
      encoder: fakeEncoder,
      connection,
      prefix: freshPrefix(),
      log,
      batchSize: 2,
      concurrency: 1,
      dtype: "float32",
      maxPixels: 50_000_000,
      lockDurationMs: 5_000,
      stalledIntervalMs: 2_000,
    });
    try {
      expect(worker.opts).toMatchObject({ maxStalledCount: 3, lockDuration: 5_000, stalledInterval: 2_000 });
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });
});
