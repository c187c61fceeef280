import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { dockerContext } from "./docker-context.ts";
import { tempDir } from "./services.ts";

/** The checkout this test run comes from. */
export const CHECKOUT = path.resolve(import.meta.dirname, "../..");

/**
 * What an image's runtime stage holds, without Docker: the build context (.dockerignore applied)
 * copied to a fresh folder under the system temp dir, then the same frozen production-only install
 * the Dockerfiles' build stage makes (`--offline`: the store the dev install filled has every
 * package). Files and folders are readable by every user and owned by root, so a process run as
 * another user finds the tree as it finds /app in the image: readable, not writable.
 */
export async function productionTree(label: string): Promise<{ work: string; app: string }> {
  const work = await tempDir(label);
  // mkdtemp makes 0700: the image's user must be able to walk into the tree.
  await fsp.chmod(work, 0o755);
  const app = path.join(work, "app");
  for (const f of dockerContext(CHECKOUT).files) {
    fs.mkdirSync(path.dirname(path.join(app, f)), { recursive: true });
    fs.copyFileSync(path.join(CHECKOUT, f), path.join(app, f));
  }
  const install = spawnSync("pnpm", ["install", "--frozen-lockfile", "--prod", "--offline"], {
    cwd: app,
    encoding: "utf8",
  });
  if (install.status !== 0)
    throw new Error(`production install failed:\n${install.stdout}\n${install.stderr}`);
  return { work, app };
}

export interface Role {
  child: ChildProcess;
  /** The last 3,000 characters of its stdout and stderr together. */
  output: () => string;
  /** Everything it wrote to stdout and stderr. */
  all: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/**
 * A capflow command started from a production tree the way the images' ENTRYPOINT starts it, with
 * only `env` (and PATH) in its environment; `user` runs it as that uid/gid, as the image's USER does.
 */
export function startRole(
  app: string,
  args: string[],
  env: Record<string, string>,
  opts: { user?: { uid: number; gid: number }; cwd?: string } = {},
): Role {
  const child = spawn(
    process.execPath,
    ["--import", "./node_modules/tsx/dist/loader.mjs", "packages/cli/src/main.ts", ...args],
    {
      cwd: opts.cwd ?? app,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(opts.user ?? {}),
    },
  );
  let output = "";
  let stdout = "";
  child.stdout!.on("data", (d: Buffer) => {
    output += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output.slice(-3000), all: () => output, stdout: () => stdout, exited };
}
