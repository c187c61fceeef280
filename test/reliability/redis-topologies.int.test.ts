import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CommonEnv,
  ConfigError,
  assertNoEviction,
  concurrencyKey,
  connectRedis,
  redisSettings,
  startRuntime,
  waitReady,
} from "@capflow/common";
import { journalKey } from "@capflow/feature-worker";
import { redisCli, startAcl, startCluster, startTls, type Topology } from "../support/redis-topologies.ts";
import { runPipelineOn, type TopologyRun } from "../support/topology-pipeline.ts";
import { tempDir } from "../support/services.ts";

// capflow on Redis as operators run it (docs/operations.md, "Redis"): a 3-primary Cluster, TLS with
// CONFIG disabled, and an ACL user without CONFIG/FLUSHALL/KEYS, each started here from Debian's
// redis-server. On each the whole pipeline runs through BullMQ and the ledger must be clean.

function expectClean(run: TopologyRun) {
  const { ledger } = run;
  // The figures the issue asks for, per topology.
  console.log(
    `[topology ${run.topology}] ingested=${ledger.ingested} vectors=${ledger.vectors} quarantined=${ledger.quarantined} ` +
      `lost=${ledger.missing.length} reconciled=${run.reconciled.reduce((n, r) => n + r.reenqueued, 0)} ` +
      `ms=${JSON.stringify(run.ms)} caption="${run.caption}"`,
  );
  expect(ledger.ingested).toBe(25);
  expect(ledger.vectors).toBe(24);
  expect(ledger.quarantined).toBe(1);
  expect(ledger.missing).toEqual([]);
  expect(ledger.overlap).toEqual([]);
  expect(ledger.twice).toEqual([]);
  expect(ledger.unknown).toEqual([]);
  expect(ledger.badVectors).toEqual([]);
  expect(run.reconciled).toEqual([]);
  expect(run.trained.runId).toBe(`run-${run.topology}`);
  expect(run.caption.length).toBeGreaterThan(0);
  expect(run.bulkCaptioned).toBe(5);
}

describe("Redis Cluster (3 primaries)", () => {
  let topo: Topology;
  beforeAll(async () => {
    topo = await startCluster();
  });
  afterAll(async () => topo?.stop());

  it("refuses a queue prefix without a hash tag, naming the variable", async () => {
    await expect(
      startRuntime("t", CommonEnv, {
        source: { ...topo.env, CAPFLOW_QUEUE_PREFIX: "capflow", CAPFLOW_HOME: await tempDir() },
        signals: false,
      }),
    ).rejects.toThrow(ConfigError);
    await expect(
      startRuntime("t", CommonEnv, {
        source: { ...topo.env, CAPFLOW_QUEUE_PREFIX: "capflow", CAPFLOW_HOME: await tempDir() },
        signals: false,
      }),
    ).rejects.toThrow(/CAPFLOW_QUEUE_PREFIX.*hash tag.*\{capflow\}/);
  });

  it("puts capflow's own keys in the slot of its queues", async () => {
    const slot = async (key: string) =>
      Number((await redisCli([...topo.admin, "cluster", "keyslot", key])).trim());
    const queueSlot = await slot("{capflow}:features:wait");
    expect(await slot(concurrencyKey("{capflow}", "features"))).toBe(queueSlot);
    expect(await slot(journalKey("{capflow}", "features.drawn.abc"))).toBe(queueSlot);
  });

  it("runs ingest → features → train → captions with a clean ledger", async () => {
    expectClean(await runPipelineOn("cluster", topo.env));
  });
});

describe("TLS Redis without CONFIG (as hosted Redis runs)", () => {
  let topo: Topology & { caFile: string };
  beforeAll(async () => {
    topo = await startTls();
  });
  afterAll(async () => topo?.stop());

  it("verifies the server certificate: without the CA file the connection is refused", async () => {
    const env = CommonEnv.parse({ ...topo.env, CAPFLOW_REDIS_TLS_CA_FILE: undefined });
    const client = connectRedis(redisSettings(env), "producer");
    const errors: string[] = [];
    client.on("error", (e: Error) => errors.push(e.message));
    await expect(waitReady(client, 3_000)).rejects.toThrow(/cannot reach Redis at rediss:/);
    client.disconnect();
    expect(errors.join("\n")).toMatch(/self[- ]signed|unable to verify|certificate/i);
  });

  it("runs ingest → features → train → captions with a clean ledger", async () => {
    expect(await redisCli([...topo.admin, "config", "get", "maxmemory-policy"])).toMatch(/unknown command/i);
    expectClean(await runPipelineOn("tls", topo.env));
  });
});

describe("ACL user without CONFIG, FLUSHALL, KEYS", () => {
  let topo: Topology;
  beforeAll(async () => {
    topo = await startAcl();
  });
  afterAll(async () => topo?.stop());

  it("reads the eviction policy from INFO, and warns and goes on when INFO is denied too", async () => {
    const limited = connectRedis(redisSettings(CommonEnv.parse(topo.env)), "producer");
    await waitReady(limited);
    await expect(limited.config("GET", "maxmemory-policy")).rejects.toThrow(/NOPERM/);
    await expect(limited.flushall()).rejects.toThrow(/NOPERM/);
    await expect(limited.keys("*")).rejects.toThrow(/NOPERM/);
    const warnings: string[] = [];
    await assertNoEviction(limited, (msg) => warnings.push(msg));
    expect(warnings).toEqual([]);
    limited.disconnect();

    const noInfo = connectRedis(
      redisSettings(
        CommonEnv.parse({
          ...topo.env,
          CAPFLOW_REDIS_USERNAME: "noinfo",
          CAPFLOW_REDIS_PASSWORD: "noinfo-pw",
        }),
      ),
      "producer",
    );
    await assertNoEviction(noInfo, (msg) => warnings.push(msg));
    noInfo.disconnect();
    expect(warnings).toEqual(["could not read Redis maxmemory-policy; make sure it is noeviction"]);
  });

  it("refuses an evicting Redis it can read through INFO", async () => {
    await redisCli([...topo.admin, "config", "set", "maxmemory-policy", "allkeys-lru"]);
    try {
      await expect(
        startRuntime("t", CommonEnv, {
          source: { ...topo.env, CAPFLOW_HOME: await tempDir() },
          signals: false,
        }),
      ).rejects.toThrow(/maxmemory-policy is "allkeys-lru"/);
    } finally {
      await redisCli([...topo.admin, "config", "set", "maxmemory-policy", "noeviction"]);
    }
  });

  it("runs ingest → features → train → captions with a clean ledger", async () => {
    expectClean(await runPipelineOn("acl", topo.env));
  });
});
