import { describe, expect, it } from "vitest";
import { PipelineFixture } from "../support/fault/fixture.ts";
import { TcpProxy } from "../support/fault/tcp-proxy.ts";
import { badImageCorpus, rng } from "../support/fault/bad-images.ts";
import { sleep, type CapflowProcess } from "../support/fault/process-control.ts";

// docs/reliability.md test 1: the feature pipeline on a few hundred images with 5% bad inputs, three
// child-process workers reaching Redis through a proxy, and ≥ 30 faults at random while it runs:
// SIGKILL a worker (restarted a second later), SIGSTOP/SIGCONT a worker, a Redis outage at the
// proxy, and a Redis restart without persistence (every queued job lost; `reconcile` brings them back).
const IMAGES = Number(process.env.CAPFLOW_CHAOS_IMAGES ?? 285);
const FAULTS = Number(process.env.CAPFLOW_CHAOS_FAULTS ?? 32);

describe("conservation under chaos", () => {
  it("ends every ingested image as exactly one valid vector or one quarantine entry", async () => {
    const f = await PipelineFixture.create();
    const proxy = await new TcpProxy(f.redis.port).start();
    const random = rng(2024);
    const faults: Record<string, number> = {
      "worker-sigkill": 0,
      "worker-sigstop": 0,
      "redis-outage": 0,
      "redis-restart-empty": 0,
    };
    try {
      const corpus = await badImageCorpus();
      const picks = ["truncated", "corrupt", "text", "empty", "tiff", "svg", "heic-like"];
      const bad: Record<string, Buffer> = {};
      for (let i = 0; Object.keys(bad).length < Math.round(IMAGES * 0.05); i++) {
        const c = corpus.filter((x) => x.kind === picks[i % picks.length])[Math.floor(i / picks.length)]!;
        bad[`bad-${i}-${c.name}`] = c.bytes;
      }
      await f.writeDataset(IMAGES, bad);
      const workers: CapflowProcess[] = [0, 1, 2].map(() =>
        f.startWorker({ CAPFLOW_FEATURE_BATCH: "4" }, proxy.url),
      );
      await Promise.all(workers.map((w) => w.waitReady()));
      const ingest = await f.ingest(10);
      const total = ingest.shards;
      const started = Date.now();

      for (let n = 0; n < FAULTS; n++) {
        await sleep(2000 + random() * 3000);
        const w = workers[Math.floor(random() * workers.length)]!;
        const roll = random();
        if (roll < 0.45) {
          faults["worker-sigkill"]!++;
          await w.kill();
          await sleep(1000);
          w.start();
        } else if (roll < 0.65) {
          faults["worker-sigstop"]!++;
          w.pause();
          await sleep(2000 + random() * 4000);
          w.resume();
        } else if (roll < 0.9) {
          faults["redis-outage"]!++;
          proxy.pause();
          await sleep(1000 + random() * 7000);
          proxy.resume();
        } else {
          faults["redis-restart-empty"]!++;
          await f.redis.restart();
          await f.reconcile();
        }
      }
      const faultsDone = Date.now();
      const final = await f.reconcile();
      // Killed jobs come back by the stalled check (lock 60 s + interval 30 s); Redis restarts by reconcile.
      let lastReconcile = Date.now();
      await f.waitAllDone(900_000, f.dataset, async () => {
        if (Date.now() - lastReconcile > 60_000) {
          lastReconcile = Date.now();
          await f.reconcile();
        }
      });
      const recoveryMs = Date.now() - faultsDone;

      const ledger = await f.ledger();
      const dupes = await f.duplicateWrites();
      const restarts = workers.reduce((a, w) => a + w.starts - 1, 0);
      const crashes = workers.flatMap((w) => w.exits).filter((e) => e.signal !== "SIGKILL");
      console.info(
        JSON.stringify({
          images: ledger.ingested,
          shards: total,
          faults,
          faultTotal: Object.values(faults).reduce((a, b) => a + b, 0),
          vectors: ledger.vectors,
          quarantined: ledger.quarantined,
          reasons: ledger.reasons,
          lost: ledger.missing.length,
          duplicateIds: ledger.twice.length,
          rewrittenOutputs: dupes,
          finalReconcile: { ...final, reenqueuedShards: undefined },
          workerRestarts: restarts,
          unexpectedExits: crashes,
          faultPhaseMs: faultsDone - started,
          recoveryMs,
        }),
      );
      // Ingest folds byte-identical files (the 0-byte ones) into one image.
      expect(ledger.ingested).toBe(ingest.images);
      expect(ledger.missing).toEqual([]);
      expect(ledger.overlap).toEqual([]);
      expect(ledger.twice).toEqual([]);
      expect(ledger.unknown).toEqual([]);
      expect(ledger.badVectors).toEqual([]);
      expect(ledger.quarantined).toBe(ingest.images - IMAGES);
      expect(ledger.vectors).toBe(IMAGES);
      expect(crashes).toEqual([]);
    } finally {
      await f.close();
      await proxy.stop();
    }
  });
});
