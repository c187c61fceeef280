import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { freePort } from "@capflow/common";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
// node with tsx's loader rather than the tsx CLI, which SIGKILLs its child 30 ms after relaying
// SIGTERM: graceful shutdown needs the signal to reach capflow itself.
const TSX_LOADER = path.join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs");
const MAIN = path.join(REPO_ROOT, "packages/cli/src/main.ts");

export interface ChildSpec {
  name: string;
  args: string[];
  env?: Record<string, string>;
  /** The variable naming the port the child serves /healthz on (CAPFLOW_API_PORT for the API). */
  portVariable?: string;
}

export interface Supervised {
  name: string;
  child: ChildProcess;
  /** Where the child serves /healthz, /readyz and /metrics, once it answers (undefined if it exited). */
  opsUrl: Promise<string | undefined>;
  exited: Promise<number | null>;
}

/**
 * Runs capflow roles as separate processes (the distributed system, on one machine): logs go to
 * `<logDir>/<name>.log`, and `stopAll` sends SIGTERM, then SIGKILL after the deadline, so nothing
 * is left running when the parent exits. Each child gets a free port chosen here, so where it serves
 * is known without reading its logs (whatever their level).
 */
export class Supervisor {
  readonly children: Supervised[] = [];

  constructor(
    private readonly logDir: string,
    private readonly baseEnv: Record<string, string>,
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  async start(spec: ChildSpec): Promise<Supervised> {
    const log = createWriteStream(path.join(this.logDir, `${spec.name}.log`), { flags: "a" });
    // A port the user fixed for this kind of child (CAPFLOW_API_PORT=8080) is kept; worker ops
    // ports are always fresh, since several workers run side by side.
    const fixed = spec.portVariable ? Number(process.env[spec.portVariable] ?? 0) : 0;
    const port = fixed > 0 ? fixed : await freePort();
    const child = spawn(process.execPath, ["--import", TSX_LOADER, MAIN, ...spec.args], {
      env: {
        ...process.env,
        ...this.baseEnv,
        [spec.portVariable ?? "CAPFLOW_OPS_PORT"]: String(port),
        ...spec.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const url = `http://127.0.0.1:${port}`;
    const opsUrl = waitForHealth(url, child);
    const supervised = { name: spec.name, child, opsUrl, exited };
    this.children.push(supervised);
    return supervised;
  }

  async stopAll(deadlineMs = 15_000): Promise<void> {
    const running = this.children.filter((c) => c.child.exitCode === null && c.child.signalCode === null);
    for (const c of running) c.child.kill("SIGTERM");
    const timer = setTimeout(() => running.forEach((c) => c.child.kill("SIGKILL")), deadlineMs);
    await Promise.all(running.map((c) => c.exited));
    clearTimeout(timer);
  }
}

/** Polls /healthz until the child answers; undefined when it exits first. */
async function waitForHealth(url: string, child: ChildProcess): Promise<string | undefined> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return undefined;
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200 || res.status === 503) return url;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
