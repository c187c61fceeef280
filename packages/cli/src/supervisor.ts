import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
const TSX = path.join(REPO_ROOT, "node_modules/.bin/tsx");
const MAIN = path.join(REPO_ROOT, "packages/cli/src/main.ts");

export interface ChildSpec {
  name: string;
  args: string[];
  env?: Record<string, string>;
}

export interface Supervised {
  name: string;
  child: ChildProcess;
  /** The URL the child logged when it started serving (ops server or API), once known. */
  opsUrl: Promise<string | undefined>;
  exited: Promise<number | null>;
}

/**
 * Runs capflow roles as separate processes (the distributed system, on one machine): logs go to
 * `<logDir>/<name>.log`, and `stopAll` sends SIGTERM, then SIGKILL after the deadline, so nothing
 * is left running when the parent exits.
 */
export class Supervisor {
  readonly children: Supervised[] = [];

  constructor(
    private readonly logDir: string,
    private readonly baseEnv: Record<string, string>,
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  start(spec: ChildSpec): Supervised {
    const log = createWriteStream(path.join(this.logDir, `${spec.name}.log`), { flags: "a" });
    const child = spawn(TSX, [MAIN, ...spec.args], {
      env: { ...process.env, ...this.baseEnv, ...spec.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let resolveUrl: (u: string | undefined) => void = () => {};
    const opsUrl = new Promise<string | undefined>((r) => (resolveUrl = r));
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      log.write(`${line}\n`);
      if (line.includes('"ops server') || line.includes('"api listening"')) {
        try {
          resolveUrl((JSON.parse(line) as { url?: string }).url);
        } catch {
          /* not JSON: ignore */
        }
      }
    });
    child.stderr!.pipe(log, { end: false });
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => {
        resolveUrl(undefined);
        resolve(code);
      }),
    );
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
