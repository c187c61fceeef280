import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "@capflow/common";
import { tempDir } from "./services.ts";

const run = promisify(execFile);

/**
 * Redis as operators run it, started by the tests from Debian's `redis-server` and `redis-cli` on
 * loopback: a 3-primary Cluster, a TLS server with CONFIG disabled (as hosted Redis does), an ACL
 * user without CONFIG/FLUSHALL/KEYS, and a Sentinel-managed primary with a replica. Each topology
 * returns the capflow environment that reaches it and a `stop()`.
 */
export interface RedisProcess {
  port: number;
  dir: string;
  child: ChildProcess;
  log: () => string;
  /** SIGKILL, as a crashed host would. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface Topology {
  name: string;
  /** CAPFLOW_REDIS_* variables (and the queue prefix) for a capflow process. */
  env: Record<string, string>;
  /** redis-cli arguments that reach a data node as an administrator (for checks, not for capflow). */
  admin: string[];
  servers: RedisProcess[];
  stop(): Promise<void>;
}

const BASE = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"];

/** Starts one redis-server with `args` and waits for "Ready to accept connections". */
export async function startRedisProcess(
  args: string[],
  opts: { dir?: string; port?: number; sentinelConf?: string; readyLine?: RegExp } = {},
): Promise<RedisProcess> {
  const dir = opts.dir ?? (await tempDir("redis"));
  await fs.mkdir(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const argv = opts.sentinelConf
    ? [opts.sentinelConf, "--sentinel", "--port", String(port), "--dir", dir, ...args]
    : ["--port", String(port), "--dir", dir, ...BASE, ...args];
  const child = spawn("redis-server", argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = opts.readyLine ?? /Ready to accept connections|Sentinel ID is/;
  const started = Date.now();
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`redis-server ${argv.join(" ")} exited:\n${out}`);
    if (Date.now() - started > 15_000) throw new Error(`redis-server not ready after 15 s:\n${out}`);
    await sleep(50);
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { port, dir, child, log: () => out, kill: () => end("SIGKILL"), stop: () => end("SIGTERM") };
}

export async function redisCli(args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", args, { timeout: 30_000 });
  return stdout;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(200);
  }
}

const stopAll = (servers: RedisProcess[]) => async () => {
  await Promise.all(servers.map((s) => s.stop()));
};

/** Three primaries, no replicas, slots spread by `redis-cli --cluster create`. */
export async function startCluster(): Promise<Topology> {
  const root = await tempDir("cluster");
  const servers: RedisProcess[] = [];
  for (let i = 0; i < 3; i++)
    servers.push(
      await startRedisProcess(
        ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000"],
        { dir: path.join(root, `n${i}`) },
      ),
    );
  const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
  await redisCli(["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"]);
  for (const s of servers)
    await waitFor(`cluster_state:ok on ${s.port}`, async () =>
      (await redisCli(["-p", String(s.port), "cluster", "info"])).includes("cluster_state:ok"),
    );
  return {
    name: "cluster",
    env: {
      CAPFLOW_REDIS_MODE: "cluster",
      CAPFLOW_REDIS_URL: nodes.map((n) => `redis://${n}`).join(","),
      CAPFLOW_QUEUE_PREFIX: "{capflow}",
    },
    admin: ["-c", "-p", String(servers[0]!.port)],
    servers,
    stop: stopAll(servers),
  };
}

/**
 * TLS only (no plaintext port), certificates from a CA made here with openssl, and CONFIG renamed
 * away as hosted Redis does: capflow must start without it.
 */
export async function startTls(): Promise<Topology & { caFile: string }> {
  const dir = await tempDir("tls");
  const f = (n: string) => path.join(dir, n);
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=capflow-test-ca", "-keyout", f("ca.key"), "-out", f("ca.crt")]); // prettier-ignore
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f("server.key"), "-out", f("server.csr")]); // prettier-ignore
  await fs.writeFile(f("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await run("openssl", ["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f("san.ext"), "-out", f("server.crt")]); // prettier-ignore
  const tlsPort = await freePort();
  const server = await startRedisProcess(
    [
      "--port", "0", "--tls-port", String(tlsPort),
      "--tls-cert-file", f("server.crt"), "--tls-key-file", f("server.key"), "--tls-ca-cert-file", f("ca.crt"),
      "--tls-auth-clients", "no",
      "--rename-command", "CONFIG", "",
    ], // prettier-ignore
    { dir: path.join(dir, "data") },
  );
  return {
    name: "tls",
    caFile: f("ca.crt"),
    env: {
      CAPFLOW_REDIS_URL: `rediss://127.0.0.1:${tlsPort}`,
      CAPFLOW_REDIS_TLS_CA_FILE: f("ca.crt"),
      CAPFLOW_QUEUE_PREFIX: "capflow",
    },
    admin: ["--tls", "--cacert", f("ca.crt"), "-p", String(tlsPort)],
    servers: [{ ...server, port: tlsPort }],
    stop: stopAll([server]),
  };
}

/** The ACL rule capflow's own user gets: everything but CONFIG, FLUSHALL/FLUSHDB and KEYS. */
export const LIMITED_ACL = ["~*", "&*", "+@all", "-config", "-flushall", "-flushdb", "-keys"];

/** The default user off; an `admin` user; `capflow` with LIMITED_ACL; `noinfo` that may not run INFO. */
export async function startAcl(): Promise<Topology> {
  const server = await startRedisProcess([
    "--user", "default", "off",
    "--user", "admin", "on", ">admin-pw", "~*", "&*", "+@all",
    "--user", "capflow", "on", ">capflow-pw", ...LIMITED_ACL,
    "--user", "noinfo", "on", ">noinfo-pw", ...LIMITED_ACL, "-info",
  ]); // prettier-ignore
  return {
    name: "acl",
    env: {
      CAPFLOW_REDIS_URL: `redis://127.0.0.1:${server.port}`,
      CAPFLOW_REDIS_USERNAME: "capflow",
      CAPFLOW_REDIS_PASSWORD: "capflow-pw",
      CAPFLOW_QUEUE_PREFIX: "capflow",
    },
    admin: ["-p", String(server.port), "--user", "admin", "--pass", "admin-pw", "--no-auth-warning"],
    servers: [server],
    stop: stopAll([server]),
  };
}

export interface SentinelTopology extends Topology {
  primary: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** The address the sentinels now give for the primary. */
  primaryPort(): Promise<number>;
}

/**
 * A primary, one replica and three sentinels (quorum 2) that declare the primary down after 1 s.
 * Replication is asynchronous: writes acknowledged by the primary just before it dies may never
 * reach the replica, which is what the failover test measures.
 */
export async function startSentinel(name = "mymaster"): Promise<SentinelTopology> {
  const root = await tempDir("sentinel");
  const primary = await startRedisProcess([], { dir: path.join(root, "primary") });
  const replica = await startRedisProcess(["--replicaof", "127.0.0.1", String(primary.port)], {
    dir: path.join(root, "replica"),
  });
  await waitFor("replica in sync", async () =>
    (await redisCli(["-p", String(replica.port), "info", "replication"])).includes("master_link_status:up"),
  );
  const sentinels: RedisProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = path.join(root, `sentinel${i}`);
    await fs.mkdir(dir, { recursive: true });
    const conf = path.join(dir, "sentinel.conf");
    await fs.writeFile(
      conf,
      [
        "bind 127.0.0.1",
        `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        "",
      ].join("\n"),
    );
    sentinels.push(await startRedisProcess([], { dir, sentinelConf: conf }));
  }
  for (const s of sentinels)
    await waitFor(`sentinel ${s.port} sees the replica and the other sentinels`, async () => {
      const m = await redisCli(["-p", String(s.port), "sentinel", "master", name]);
      const field = (k: string) => Number(new RegExp(`^${k}\\n(\\d+)`, "m").exec(m)?.[1] ?? -1);
      return field("num-slaves") >= 1 && field("num-other-sentinels") >= 2;
    });
  const servers = [primary, replica, ...sentinels];
  return {
    name: "sentinel",
    env: {
      CAPFLOW_REDIS_MODE: "sentinel",
      CAPFLOW_REDIS_URL: sentinels.map((s) => `redis://127.0.0.1:${s.port}`).join(","),
      CAPFLOW_REDIS_SENTINEL_NAME: name,
      CAPFLOW_QUEUE_PREFIX: "capflow",
    },
    admin: ["-p", String(primary.port)],
    servers,
    primary,
    replica,
    sentinels,
    async primaryPort() {
      const out = await redisCli([
        "-p",
        String(sentinels[0]!.port),
        "sentinel",
        "get-master-addr-by-name",
        name,
      ]);
      return Number(out.trim().split("\n")[1]);
    },
    stop: stopAll(servers),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
