import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../services.ts";
import type { Case } from "./bad-images.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CHILD = path.join(ROOT, "test/support/fault/decode-child.ts");

export interface DecodeLine {
  i: number | string;
  ok: boolean;
  reason?: string;
  valid?: boolean;
  rss: number;
}

export interface DecodeRun {
  lines: DecodeLine[];
  /** Inputs on which the child died (signal or non-zero exit) or hung. */
  crashes: Array<{ i: number | string; how: string }>;
  peakRss: number;
}

/**
 * Runs the decode child over `args`; a crash or a hang (no line for `hangMs`) is recorded against the
 * next input and, in fuzz mode, the child restarts after it.
 */
export async function runDecodeChild(
  args: string[],
  opts: { hangMs?: number; restartFrom?: (next: number) => string[] | undefined } = {},
): Promise<DecodeRun> {
  const run: DecodeRun = { lines: [], crashes: [], peakRss: 0 };
  let current = args;
  for (;;) {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, ...current], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let last = Date.now();
    let hung = false;
    const watchdog = setInterval(() => {
      if (Date.now() - last > (opts.hangMs ?? 60_000)) {
        hung = true;
        child.kill("SIGKILL");
      }
    }, 1000);
    let lastIndex: number | string | undefined;
    for await (const text of createInterface({ input: child.stdout })) {
      last = Date.now();
      const line = JSON.parse(text) as DecodeLine;
      run.lines.push(line);
      run.peakRss = Math.max(run.peakRss, line.rss);
      lastIndex = line.i;
    }
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.exitCode !== null || child.signalCode !== null
        ? resolve([child.exitCode, child.signalCode])
        : child.once("exit", (c, s) => resolve([c, s])),
    );
    clearInterval(watchdog);
    if (code === 0) return run;
    const next = typeof lastIndex === "number" ? lastIndex + 1 : `after ${String(lastIndex)}`;
    run.crashes.push({
      i: next,
      how: hung ? "hang" : `exit ${code} signal ${signal}: ${stderr.slice(-500)}`,
    });
    const resume = typeof next === "number" ? opts.restartFrom?.(next + 1) : undefined;
    if (!resume) return run;
    current = resume;
  }
}

/** Writes each case to a fresh folder under its name (the decode child's `corpus` mode reads it). */
export async function writeCases(cases: Case[]): Promise<string> {
  const dir = await tempDir("cases");
  await Promise.all(cases.map((c) => fs.writeFile(path.join(dir, c.name), c.bytes)));
  return dir;
}

/**
 * The cases the real decode path refuses, decided in a child process: a truncated or corrupt file
 * sometimes still decodes (damage in bytes the decoder can skip), so a test that counts on a bad
 * file being quarantined picks from these.
 */
export async function refusedCases(cases: Case[]): Promise<Case[]> {
  const dir = await writeCases(cases);
  try {
    const run = await runDecodeChild(["corpus", dir]);
    if (run.crashes.length > 0) throw new Error(`decode child crashed: ${JSON.stringify(run.crashes)}`);
    const refused = new Set(run.lines.filter((l) => !l.ok).map((l) => String(l.i)));
    return cases.filter((c) => refused.has(c.name));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
