import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's root: where `./capflow` runs the CLI from. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MAIN = path.join(ROOT, "packages/cli/src/main.ts");
// By path: the command also runs from folders outside the checkout.
const TSX_LOADER = path.join(ROOT, "node_modules/tsx/dist/loader.mjs");

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The capflow command as a user runs it (`./capflow`: node with tsx's loader), a child process with
 * stdout and stderr read apart. It sees none of this process's CAPFLOW_* settings, only `env`'s.
 */
export function runCapflow(args: string[], env: Record<string, string>, cwd = ROOT): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CAPFLOW_")));
    const child = spawn(process.execPath, ["--import", TSX_LOADER, MAIN, ...args], {
      cwd,
      env: { ...clean, NODE_OPTIONS: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
