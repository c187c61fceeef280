import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";

export interface EmbeddedRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export const REDIS_INSTALL_HINT =
  "redis-server was not found on PATH. Install it with:\n  sudo apt-get update && sudo apt-get install -y redis-server\n" +
  "or point capflow at an existing Redis with CAPFLOW_REDIS_URL=redis://host:6379";

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function redisServerAvailable(binary = "redis-server"): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * Starts a private redis-server on a free loopback port for the default path (no CAPFLOW_REDIS_URL).
 * `noeviction` because BullMQ's keys must never be evicted; AOF everysec so a crash of the whole
 * demo loses at most a second of queue state (the object store holds the truth; see reconcile).
 */
export async function startEmbeddedRedis(opts: {
  dataDir: string;
  binary?: string;
  persistence?: boolean;
  port?: number;
  /**
   * `requirepass` for the server; the URL carries it. capflow's own embedded Redis always gets a
   * generated one (redis-endpoint.ts): bound to loopback is not enough on a shared machine, where any
   * local user or a browser page's request smuggling could reach the port.
   */
  password?: string;
}): Promise<EmbeddedRedis> {
  const binary = opts.binary ?? "redis-server";
  if (!redisServerAvailable(binary)) throw new Error(REDIS_INSTALL_HINT);
  mkdirSync(opts.dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    path.resolve(opts.dataDir),
    "--maxmemory-policy",
    "noeviction",
    "--save",
    "",
    "--appendonly",
    opts.persistence === false ? "no" : "yes",
    "--appendfsync",
    "everysec",
    "--protected-mode",
    "yes",
  ];
  // On the command line the password would show in `ps`: a config file only this user reads.
  if (opts.password !== undefined) {
    const conf = path.join(path.resolve(opts.dataDir), "capflow-auth.conf");
    writeFileSync(conf, `requirepass ${opts.password}\n`, { mode: 0o600 });
    args.unshift(conf);
  }
  const child: ChildProcess = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const auth = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}@` : "";
  const url = `redis://${auth}127.0.0.1:${port}`;
  await waitForPing(url, child, () => stderr);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

async function waitForPing(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr()}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return;
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server did not answer on ${url}: ${stderr()}`);
}
