import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import YAML from "yaml";
import { waitFor } from "../support/wait-for.ts";
import { freePort, LocalStore, createQueue, createRedis, type QueueName } from "@capflow/common";
import { ingestDataset } from "@capflow/ingest";
import { freshPrefix, redisUrl, tempDir } from "../support/services.ts";
import { writeJsonlDataset } from "../support/images.ts";

/**
 * The dashboards and alert rules in deploy/ against a real Prometheus (Debian's binary) scraping
 * real capflow processes on loopback, fed a little real work (ingest → features → training →
 * one caption), so histograms and labelled series exist. Also checks docs/metrics.md against what
 * the processes expose. To cover a new role, add it to ROLES.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
// As ./capflow runs it: node with tsx's loader (the tsx CLI SIGKILLs its child 30 ms after SIGTERM).
const NODE_TSX = [process.execPath, "--import", path.join(ROOT, "node_modules/tsx/dist/loader.mjs")] as const;
const CLI = path.join(ROOT, "packages/cli/src/main.ts");
const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";

interface RoleSpec {
  /** The `role` label the process sets (startRuntime's first argument). */
  role: string;
  args: string[];
  env?: (ports: { ops: number; extra: number }) => Record<string, string>;
  /** Where /healthz and /metrics are served: CAPFLOW_OPS_PORT (default) or the role's own port. */
  opsOn?: "ops" | "extra";
}

const ROLES: RoleSpec[] = [
  { role: "feature-worker", args: ["worker", "features"], env: () => ({ CAPFLOW_FEATURE_THREADS: "1" }) },
  { role: "trainer", args: ["worker", "training"] },
  {
    role: "caption-worker",
    args: ["worker", "captions"],
    env: () => ({ CAPFLOW_MODEL_POLL_SECONDS: "1", CAPFLOW_FEATURE_THREADS: "1" }),
  },
  {
    role: "api",
    args: ["api"],
    env: ({ extra }) => ({ CAPFLOW_API_PORT: String(extra), CAPFLOW_API_HOST: "127.0.0.1" }),
    // The API serves /healthz, /readyz and /metrics on its HTTP port.
    opsOn: "extra",
  },
];

/** Exported by redis_exporter and NVIDIA's dcgm-exporter, not by capflow; not running in this test. */
const EXTERNAL = /^(redis_|DCGM_)/;

/** A dashboard query as Grafana sends it with every template variable at "All" (`.*`). */
const withVariablesAtAll = (expr: string) => expr.replace(/\$(\w+)/g, ".*");

interface Running {
  spec: RoleSpec;
  child: ChildProcess;
  opsPort: number;
  log: string[];
}

const catalogue = parseCatalogue(fs.readFileSync(path.join(ROOT, "docs/metrics.md"), "utf8"));
const running: Running[] = [];
let prometheus: { child: ChildProcess; url: string } | undefined;
let workDir = "";
let exposed = new Map<string, { type: string; roles: Set<string> }>();
const notes: string[] = [];
const note = (msg: string) => {
  notes.push(msg);
  console.warn(`[dashboards] ${msg}`);
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The shared bounded wait, polled every 500 ms as Prometheus scrapes slowly. */
const poll = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500) =>
  waitFor(what, fn, { timeoutMs, everyMs });

function cliSupports(command: string): boolean {
  const r = spawnSync(NODE_TSX[0], [...NODE_TSX.slice(1), CLI, command, "--help"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  return r.status === 0;
}

async function startRole(spec: RoleSpec, env: Record<string, string>): Promise<Running> {
  const opsPort = await freePort();
  const extra = await freePort();
  const child = spawn(NODE_TSX[0], [...NODE_TSX.slice(1), CLI, ...spec.args], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      CAPFLOW_OPS_HOST: "127.0.0.1",
      CAPFLOW_OPS_PORT: String(opsPort),
      ...(spec.env?.({ ops: opsPort, extra }) ?? {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  const keep = (b: Buffer) => {
    log.push(b.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { spec, child, opsPort: spec.opsOn === "extra" ? extra : opsPort, log };
}

async function stop(child: ChildProcess, ms = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}

async function promQuery(
  expr: string,
): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
  const res = await fetch(`${prometheus!.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
}

/** The metric names an expression reads (selectors), with histogram suffixes mapped to the base. */
function metricsOf(expr: string): string[] {
  const names = new Set<string>();
  const stripped = expr.replace(/"[^"]*"/g, '""');
  for (const m of stripped.matchAll(/\b([a-z_:][a-z0-9_:]*)\b\s*(\{|\[|\)|$|\s|offset)/gi)) {
    const n = m[1]!;
    if (/^(capflow_|redis_|DCGM_|up$)/.test(n)) names.add(n.replace(/_(bucket|sum|count)$/, ""));
  }
  return [...names];
}

interface CatalogueRow {
  name: string;
  type: string;
  labels: string[];
  roles: string[];
  /** `(optional)` in the roles cell: series exist only at times (e.g. while requests are in flight). */
  optional: boolean;
}

/** The tables of docs/metrics.md: `| metric | type | labels | roles | meaning |`. */
function parseCatalogue(md: string): Map<string, CatalogueRow> {
  const rows = new Map<string, CatalogueRow>();
  for (const line of md.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 7) continue;
    const name = /^`((?:capflow|process|nodejs)_[a-z0-9_]+)`$/.exec(cells[1]!)?.[1];
    if (!name) continue;
    if (rows.has(name)) throw new Error(`docs/metrics.md lists ${name} twice`);
    const optional = cells[4]!.includes("(optional)");
    const roleCell = cells[4]!.replace("(optional)", "").trim();
    const roles =
      roleCell === "all"
        ? ["all"]
        : roleCell === "workers"
          ? ["feature-worker", "trainer", "caption-worker"]
          : roleCell.split(/,\s*/);
    rows.set(name, {
      name,
      type: cells[2]!,
      labels: [...cells[3]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!),
      roles,
      optional,
    });
  }
  return rows;
}

/** Metric families in a /metrics text that have at least one sample, with their type. */
function familiesWithSamples(text: string): Map<string, string> {
  const types = new Map<string, string>();
  const sampled = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    else if (line && !line.startsWith("#")) sampled.add(line.split(/[{ ]/)[0]!);
  }
  const out = new Map<string, string>();
  for (const [name, type] of types) {
    const samples = type === "histogram" || type === "summary" ? [`${name}_count`, `${name}_sum`] : [name];
    if (samples.some((s) => sampled.has(s))) out.set(name, type);
  }
  return out;
}

const roleRunning = (role: string) => running.some((r) => r.spec.role === role);
/** A metric some running role is documented (or known) to expose. */
const expectedNow = (name: string) => {
  const row = catalogue.get(name);
  if (!row) return true;
  return row.roles.includes("all") ? running.length > 0 : row.roles.some(roleRunning);
};

async function scrapeAll(): Promise<void> {
  exposed = new Map();
  for (const r of running) {
    const text = await (await fetch(`http://127.0.0.1:${r.opsPort}/metrics`)).text();
    for (const [name, type] of familiesWithSamples(text)) {
      if (!/^(capflow|process|nodejs)_/.test(name)) continue;
      const e = exposed.get(name) ?? { type, roles: new Set<string>() };
      e.roles.add(r.spec.role);
      exposed.set(name, e);
    }
  }
}

async function waitForJobs(
  queue: Queue,
  done: (c: Record<string, number>) => boolean,
  what: string,
  ms: number,
) {
  return poll(
    what,
    async () => {
      const c = await queue.getJobCounts(
        "completed",
        "failed",
        "waiting",
        "active",
        "delayed",
        "prioritized",
      );
      return done(c) ? c : undefined;
    },
    ms,
    1000,
  );
}

describe("dashboards and alerts against a real Prometheus", () => {
  const started = Date.now();

  beforeAll(async () => {
    for (const bin of [PROMETHEUS, PROMTOOL]) {
      if (!fs.existsSync(bin))
        throw new Error(`${bin} missing: apt-get install -y prometheus (scripts/test.sh does)`);
    }
    workDir = await tempDir("dashboards");
    const storeDir = path.join(workDir, "store");
    const prefix = freshPrefix();
    const env = {
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: prefix,
      CAPFLOW_STORE: "local",
      CAPFLOW_STORE_DIR: storeDir,
      CAPFLOW_HOME: path.join(workDir, "home"),
      CAPFLOW_LOG_LEVEL: "warn",
    };

    // Roles: every one the CLI knows today (others are being written: the test grows with them).
    for (const spec of ROLES) {
      if (spec.args[0] !== "worker" && !cliSupports(spec.args[0]!)) {
        note(`role ${spec.role}: \`capflow ${spec.args.join(" ")}\` does not exist yet, not started`);
        continue;
      }
      running.push(await startRole(spec, env));
    }
    await Promise.all(
      running.map((r) =>
        poll(
          `${r.spec.role} /healthz on ${r.opsPort}`,
          async () => {
            if (r.child.exitCode !== null)
              throw new Error(`${r.spec.role} exited ${r.child.exitCode}:\n${r.log.join("")}`);
            const res = await fetch(`http://127.0.0.1:${r.opsPort}/healthz`).catch(() => undefined);
            return res?.ok ? true : undefined;
          },
          180_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${r.spec.role} log:\n${r.log.join("").slice(-3000)}`);
        }),
      ),
    );

    // Prometheus, scraping each process every second and evaluating the real alert rules.
    const promPort = await freePort();
    const config = {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [path.join(ROOT, "deploy/prometheus/alerts.yml")],
      scrape_configs: running.map((r) => ({
        job_name: `capflow-${r.spec.role}`,
        static_configs: [{ targets: [`127.0.0.1:${r.opsPort}`] }],
      })),
    };
    const configFile = path.join(workDir, "prometheus.yml");
    await fsp.writeFile(configFile, YAML.stringify(config));
    const child = spawn(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(workDir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ],
      { stdio: "ignore" },
    );
    prometheus = { child, url: `http://127.0.0.1:${promPort}` };
    await poll(
      "prometheus ready",
      async () => ((await fetch(`${prometheus!.url}/-/ready`).catch(() => undefined))?.ok ? true : undefined),
      60_000,
    );
    await poll(
      "every target up",
      async () => {
        const r = await promQuery("count(up == 1)");
        const n = Number((r.data?.result[0] as { value?: [number, string] } | undefined)?.value?.[1] ?? 0);
        return n === running.length ? true : undefined;
      },
      60_000,
    );

    // A little real work: a drawn dataset with one bad image through the features queue, one
    // malformed job, a two-epoch training run that publishes, and one caption request.
    const conn = createRedis(redisUrl(), "producer");
    const queues = {} as Record<QueueName, Queue>;
    for (const name of ["features", "training", "captions"] as const)
      queues[name] = createQueue(name, { connection: conn, prefix });
    try {
      const store = new LocalStore(storeDir);
      const dir = await writeJsonlDataset(await tempDir("ds"), 12, {
        "broken.png": Buffer.from("not an image"),
      });
      const summary = await ingestDataset(store, queues.features as never, {
        dataset: "drawn",
        format: "jsonl-folder",
        dir,
        shardSize: 8,
        onError: "skip",
      });
      await queues.features.add("malformed", { dataset: "drawn" } as never, { attempts: 1 });
      if (roleRunning("feature-worker")) {
        await waitForJobs(
          queues.features,
          (c) => c.completed! + c.failed! >= 3 && c.active === 0 && c.waiting === 0,
          "features jobs",
          240_000,
        );
      }
      const featureKeys: string[] = [];
      for await (const o of store.list("features/")) featureKeys.push(o.key);
      const encoderId = featureKeys[0]?.split("/")[1];
      if (encoderId && roleRunning("trainer")) {
        await queues.training.add("train", {
          runId: "ops-run",
          dataset: "drawn",
          encoderId,
          epochs: 2,
          batchSize: 16,
          learningRate: 0.01,
          model: { embedDim: 16, units: 32, dropout: 0 },
          publishAs: "default",
          beamWidth: 2,
        });
        await waitForJobs(queues.training, (c) => c.completed! + c.failed! >= 1, "training run", 300_000);
      }
      const api = running.find((r) => r.spec.role === "api");
      if (api) {
        // One refused request so the API's rejection counter has a series.
        const res = await fetch(`http://127.0.0.1:${api.opsPort}/v1/captions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{",
        });
        expect(res.status).toBeGreaterThanOrEqual(400);
      }
      if (roleRunning("caption-worker")) {
        const images: string[] = [];
        for await (const o of store.list("images/")) images.push(o.key);
        await sleep(3000); // the caption worker polls the model pointer every second
        await queues.captions.add("caption", {
          kind: "image",
          requestId: `r-${randomUUID()}`,
          imageKey: images[0]!,
          model: "default",
        });
        await waitForJobs(queues.captions, (c) => c.completed! + c.failed! >= 1, "caption job", 120_000);
      }
      console.warn(
        `[dashboards] fed ${JSON.stringify(summary).slice(0, 200)}; encoder ${encoderId ?? "none"}`,
      );
    } finally {
      for (const q of Object.values(queues)) await q.close();
      conn.disconnect();
    }
    // Two more scrapes so rates over the work exist.
    await sleep(3000);
    await scrapeAll();
  }, 900_000);

  afterAll(async () => {
    await Promise.all(running.map((r) => stop(r.child)));
    if (prometheus) await stop(prometheus.child);
    if (workDir) await fsp.rm(workDir, { recursive: true, force: true });
    console.warn(`[dashboards] Prometheus test wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 120_000);

  /** Whether every metric an expression reads is exposed now, or why it is skipped. */
  function skipReason(expr: string): string | undefined {
    for (const m of metricsOf(expr)) {
      if (EXTERNAL.test(m)) return `${m} comes from an exporter that is not run here`;
      if (m === "up" || exposed.has(m)) continue;
      if (!expectedNow(m)) return `${m} comes from a role that is not running`;
    }
    return undefined;
  }

  it("runs every dashboard panel's query: it parses and returns data", async () => {
    const dir = path.join(ROOT, "deploy/grafana/dashboards");
    const problems: string[] = [];
    let checked = 0;
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
      const dash = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as {
        panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
      };
      for (const panel of dash.panels) {
        for (const target of panel.targets) {
          const expr = withVariablesAtAll(target.expr);
          const where = `${file} / ${panel.title}: ${expr}`;
          const parsed = await promQuery(expr);
          if (parsed.status !== "success") {
            problems.push(`${where}: ${parsed.error}`);
            continue;
          }
          const why = skipReason(expr);
          if (why) {
            note(`skipped data check for ${where}: ${why}`);
            continue;
          }
          const ok = await poll(
            `data for ${where}`,
            async () => ((await promQuery(expr)).data?.result.length ? true : undefined),
            20_000,
          ).catch(() => false);
          if (!ok) problems.push(`${where}: no data`);
          checked++;
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(10);
  });

  it("loads the alert rules: promtool accepts them, Prometheus evaluates them, their inputs have data", async () => {
    const rulesFile = path.join(ROOT, "deploy/prometheus/alerts.yml");
    const check = spawnSync(PROMTOOL, ["check", "rules", rulesFile], { encoding: "utf8" });
    expect(check.status, check.stdout + check.stderr).toBe(0);

    const doc = YAML.parse(fs.readFileSync(rulesFile, "utf8")) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    const loaded = await poll(
      "rules evaluated",
      async () => {
        const res = (await (await fetch(`${prometheus!.url}/api/v1/rules`)).json()) as {
          data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
        };
        const all = res.data.groups.flatMap((g) => g.rules);
        return all.length === rules.length && all.every((r) => r.health !== "unknown") ? all : undefined;
      },
      30_000,
    );
    expect(loaded.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);

    const problems: string[] = [];
    for (const rule of rules) {
      const parsed = await promQuery(rule.expr);
      if (parsed.status !== "success") problems.push(`${rule.alert}: ${parsed.error}`);
      for (const m of metricsOf(rule.expr)) {
        if (EXTERNAL.test(m)) {
          note(`${rule.alert}: ${m} comes from redis_exporter, not run here`);
          continue;
        }
        const why = skipReason(m);
        if (why) {
          note(`${rule.alert}: ${why}`);
          continue;
        }
        const sel = m === "up" ? "up" : `{__name__=~"${m}(_bucket|_count)?"}`;
        const r = await promQuery(`count(${sel})`);
        if (!r.data?.result.length) problems.push(`${rule.alert}: input ${m} has no data`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("documents in docs/metrics.md exactly the capflow_*, process_* and nodejs_* metrics the processes expose", () => {
    const problems: string[] = [];
    for (const [name, e] of exposed) {
      const row = catalogue.get(name);
      if (!row)
        problems.push(
          `${name} (${e.type}, from ${[...e.roles].join(", ")}) is exposed but not in docs/metrics.md`,
        );
      else if (row.type !== e.type) problems.push(`${name}: documented as ${row.type}, exposed as ${e.type}`);
    }
    for (const row of catalogue.values()) {
      if (row.optional) continue;
      const roles = row.roles.includes("all")
        ? running.map((r) => r.spec.role)
        : row.roles.filter(roleRunning);
      for (const role of roles) {
        if (exposed.get(row.name)?.roles.has(role)) continue;
        problems.push(`${row.name} is documented for ${role} but that process does not expose it`);
      }
    }
    expect(problems).toEqual([]);
  });
});
