import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEmbeddedRedis, type EmbeddedRedis } from "@capflow/common";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = path.join(ROOT, "packages/cli/src/main.ts");
export const PRELOAD = path.join(ROOT, "test/support/fault/preload.js");

/** A capflow child process that a test can SIGKILL, SIGSTOP/SIGCONT, SIGTERM and restart. */
export class CapflowProcess {
  private child!: ChildProcess;
  output = "";
  /** Every exit so far: code or signal. */
  readonly exits: Array<{ code: number | null; signal: NodeJS.Signals | null }> = [];
  private exited!: Promise<void>;
  starts = 0;

  constructor(
    readonly args: string[],
    readonly env: Record<string, string>,
    readonly label = args.join(" "),
  ) {}

  start(): this {
    this.starts++;
    // `node --import tsx`, not the tsx CLI: the tsx CLI relays SIGTERM to its child and SIGKILLs it when
    // the child does not acknowledge within 30 ms (tsx dist/cli.mjs, relaySignals), which a busy
    // worker on a loaded machine misses: graceful shutdown then becomes a kill (exit 143).
    this.child = spawn(process.execPath, ["--import", "tsx", CLI, ...this.args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: `--import ${PRELOAD}`, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d: Buffer) => {
      this.output += d.toString();
      // Bounded: a chatty worker must not grow the test's memory.
      if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    const child = this.child;
    this.exited = once(child, "exit").then(([code, signal]) => {
      this.exits.push({ code: code as number | null, signal: signal as NodeJS.Signals | null });
    });
    return this;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the output contains `text` (e.g. a log message), or rejects when the process exits. */
  async waitFor(text: string | RegExp, timeoutMs = 120_000): Promise<void> {
    const seen = () => (typeof text === "string" ? this.output.includes(text) : text.test(this.output));
    const started = Date.now();
    while (!seen()) {
      if (!this.running) throw new Error(`${this.label} exited before "${String(text)}":\n${this.tail()}`);
      if (Date.now() - started > timeoutMs)
        throw new Error(`${this.label}: no "${String(text)}" after ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(100);
    }
  }

  /** A started worker has loaded its encoder and serves ops: it is taking jobs. */
  waitReady(timeoutMs?: number): Promise<void> {
    return this.waitFor("ops server", timeoutMs);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
  pause(): void {
    this.signal("SIGSTOP");
  }
  resume(): void {
    this.signal("SIGCONT");
  }

  /** SIGTERM and wait for the exit; returns the exit code (null when killed by a signal). */
  async terminate(): Promise<number | null> {
    if (!this.running) return this.exits.at(-1)?.code ?? null;
    this.child.kill("SIGTERM");
    await this.exited;
    return this.exits.at(-1)!.code;
  }

  wait(): Promise<void> {
    return this.exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    this.start();
  }

  tail(chars = 4_000): string {
    return this.output.slice(-chars);
  }
}

export function featureWorker(env: Record<string, string>, label = "features"): CapflowProcess {
  return new CapflowProcess(["worker", "features"], { CAPFLOW_FEATURE_THREADS: "1", ...env }, label);
}

/**
 * A private redis-server (no persistence, noeviction) on a fixed port, so that it can be killed and
 * started again empty at the same address: "Redis restarted without persistence".
 */
export class RedisControl {
  private server?: EmbeddedRedis;
  constructor(
    readonly port: number,
    private readonly dataDir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.server = await startEmbeddedRedis({ dataDir: this.dataDir, persistence: false, port: this.port });
  }
  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
