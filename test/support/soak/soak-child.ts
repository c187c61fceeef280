import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { MemorySample, SoakMessage } from "./memory.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * A soak child (`node --expose-gc --import tsx <script>`): collects its samples, answers `sample()`
 * requests over stdin, keeps the tail of its stderr and of its non-protocol stdout (logs) for the
 * failure message, and records how it exited.
 */
export class SoakChild {
  readonly samples: MemorySample[] = [];
  counts?: Record<string, number>;
  backend?: string;
  private readonly child: ChildProcessWithoutNullStreams;
  private logTail = "";
  private waiters: Array<(s: MemorySample) => void> = [];
  private readyResolve!: () => void;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(script: string, args: string[], env: Record<string, string> = {}) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.child = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", path.join(ROOT, "test/support/soak", script), ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] },
    );
    this.child.stderr.on("data", (d: Buffer) => (this.logTail = (this.logTail + d.toString()).slice(-6000)));
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (text) => this.onLine(text));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        // A child that dies before it is ready must not leave the test waiting forever.
        this.readyResolve();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of its stderr and logs, for an assertion message. */
  get tail(): string {
    return this.logTail.slice(-3000);
  }

  private onLine(text: string): void {
    let msg: SoakMessage | undefined;
    try {
      const parsed = JSON.parse(text) as Partial<SoakMessage>;
      if (typeof parsed === "object" && parsed !== null && "soak" in parsed) msg = parsed as SoakMessage;
    } catch {
      // not ours: a log line
    }
    if (!msg) {
      this.logTail = (this.logTail + text + "\n").slice(-6000);
      return;
    }
    if (msg.soak === "ready") {
      this.backend = msg.backend;
      this.readyResolve();
    } else if (msg.soak === "done") {
      this.counts = msg.counts;
    } else {
      const { soak: _soak, ...sample } = msg;
      this.samples.push(sample);
      this.waiters.shift()?.(sample);
    }
  }

  /** Asks a stdin-driven child for a sample at `i` iterations. */
  sample(i: number): Promise<MemorySample> {
    if (!this.alive) return Promise.reject(new Error(`soak child exited\n${this.tail}`));
    const got = new Promise<MemorySample>((resolve) => this.waiters.push(resolve));
    this.child.stdin.write(`sample ${i}\n`);
    return Promise.race([
      got,
      this.exited.then(() => {
        throw new Error(`soak child exited before answering a sample\n${this.tail}`);
      }),
    ]);
  }

  /** SIGTERM (graceful shutdown) and its exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill("SIGTERM");
    return this.exited;
  }

  /** SIGKILL if still running (test clean-up after a failure). */
  kill(): void {
    if (this.alive) this.child.kill("SIGKILL");
  }
}
