import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReconcileSummary } from "@capflow/ingest";
import { CapflowProcess } from "../support/fault/process-control.ts";
import { sleep, startSentinel, type SentinelTopology } from "../support/redis-topologies.ts";
import { runPipelineOn } from "../support/topology-pipeline.ts";

// A Sentinel-managed primary is SIGKILLed while feature jobs are in flight (docs/reliability.md,
// "Redis topologies"). The sentinels promote the replica; capflow's connections follow through
// Sentinel; whatever the lost primary had not replicated is found by `capflow reconcile` (the real
// CLI, as an operator runs it). Minutes long on a shared 2-core machine: chaos project.

/** `capflow reconcile <dataset>` as a child process against the same Redis and store. */
async function reconcileCli(home: string, env: Record<string, string>): Promise<ReconcileSummary> {
  const child = new CapflowProcess(["reconcile", "drawn"], {
    ...env,
    CAPFLOW_HOME: home,
    CAPFLOW_STORE: "local",
    CAPFLOW_STORE_DIR: path.join(home, "store"),
    CAPFLOW_LOG_LEVEL: "warn",
  }).start();
  await child.wait();
  const line = child.output.split("\n").find((l) => l.startsWith('{"dataset"'));
  if (!line) throw new Error(`capflow reconcile printed no summary:\n${child.tail()}`);
  return JSON.parse(line) as ReconcileSummary;
}

describe("Sentinel failover during a run", () => {
  let topo: SentinelTopology;
  beforeAll(async () => {
    topo = await startSentinel();
  });
  afterAll(async () => topo?.stop());

  it("completes with a clean ledger after the primary is killed mid-features; reconcile recovers what was lost", async () => {
    const before = await topo.primaryPort();
    const failover = { promotedMs: -1, writableMs: -1, newPrimary: 0 };
    const run = await runPipelineOn("sentinel", topo.env, {
      async midFeatures(rt) {
        const t0 = Date.now();
        await topo.primary.kill();
        while ((await topo.primaryPort().catch(() => before)) === before) {
          if (Date.now() - t0 > 60_000) throw new Error("sentinels promoted no replica in 60 s");
          await sleep(100);
        }
        failover.promotedMs = Date.now() - t0;
        failover.newPrimary = await topo.primaryPort();
        // The producer connection (fail-fast) takes writes again: capflow is back.
        for (;;) {
          try {
            await rt.redis.set(`capflow:${rt.prefix}:failover-probe`, String(t0));
            break;
          } catch {
            if (Date.now() - t0 > 120_000) throw new Error("no write through Sentinel 120 s after the kill");
            await sleep(100);
          }
        }
        failover.writableMs = Date.now() - t0;
      },
      // A shard whose job vanished with unreplicated writes never finishes by itself.
      stuckMs: 30_000,
      recover: (rt) => reconcileCli(rt.env.CAPFLOW_HOME, topo.env),
    });
    expect(failover.newPrimary).toBe(topo.replica.port);

    const lostShards = run.reconciled.flatMap((r) => r.reenqueuedShards);
    console.log(
      `[topology sentinel] ingested=${run.ledger.ingested} vectors=${run.ledger.vectors} quarantined=${run.ledger.quarantined} ` +
        `lost=${run.ledger.missing.length} failover: promoted after ${failover.promotedMs} ms, writable after ${failover.writableMs} ms; ` +
        `jobs lost with the primary and re-enqueued by capflow reconcile: ${lostShards.length} (${lostShards.join(",") || "none"}); ` +
        `ms=${JSON.stringify(run.ms)}`,
    );
    expect(run.ledger.missing).toEqual([]);
    expect(run.ledger.overlap).toEqual([]);
    expect(run.ledger.twice).toEqual([]);
    expect(run.ledger.badVectors).toEqual([]);
    expect(run.ledger.vectors + run.ledger.quarantined).toBe(run.ledger.ingested);
    expect(run.bulkCaptioned).toBe(5);
    if (run.reconciled.length) expect(run.reconciled[0]!.reenqueued).toBeGreaterThan(0);
    // At rest, the operator's check finds every shard done and nothing to re-enqueue.
    const atRest = await reconcileCli(run.home, topo.env);
    expect(atRest).toMatchObject({ done: atRest.shards, reenqueued: 0 });
  });
});
