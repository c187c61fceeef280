import { expect } from "vitest";
import { PipelineFixture } from "./fixture.ts";
import { TcpProxy } from "./tcp-proxy.ts";

/**
 * docs/reliability.md test 3: workers reach Redis through a proxy that goes dark for `seconds` while one
 * worker is busy and one idle. Neither is restarted: both must take jobs again by themselves, the
 * job in flight must complete, and jobs enqueued after the outage must complete.
 */
export async function redisOutage(seconds: number): Promise<{ recoveryMs: number; outages: number }> {
  const f = await PipelineFixture.create();
  const proxy = await new TcpProxy(f.redis.port).start();
  try {
    await f.writeDataset(16);
    const busy = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" }, proxy.url);
    await busy.waitReady();
    await f.ingest(8, "before");
    await f.waitActive(120_000, 25);
    // The second worker is idle (one job waiting at most, taken or not) when the outage starts.
    const idle = f.startWorker({ CAPFLOW_FEATURE_BATCH: "2" }, proxy.url);
    await idle.waitReady();
    proxy.pause();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    proxy.resume();
    const resumed = Date.now();
    await f.waitAllDone(240_000, "before");
    await f.ingest(4, "after");
    await f.waitAllDone(240_000, "after");
    const recoveryMs = Date.now() - resumed;
    expect(busy.starts + idle.starts).toBe(2);
    expect(busy.running && idle.running).toBe(true);
    for (const d of ["before", "after"])
      expect(await f.ledger(d)).toMatchObject({ ingested: 16, vectors: 16, missing: [], twice: [] });
    // Both workers did work after the outage: the "after" shards (4) were shared or at least taken.
    return { recoveryMs, outages: proxy.counts.outages };
  } finally {
    await f.close();
    await proxy.stop();
  }
}
