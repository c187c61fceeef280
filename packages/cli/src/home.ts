import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where capflow keeps its embedded Redis, local store and logs when CAPFLOW_HOME is not set.
 *
 * It used to be `.capflow` under the current directory: `capflow caption` run from another folder
 * started a second Redis and an empty store there and waited 608 s for a worker that would never come.
 * Now the home is found like git finds `.git`: the first `.capflow` folder in the current directory
 * or one above it; failing that, the `.capflow` of the capflow checkout the command runs from (where
 * `./capflow demo` and `./capflow up` put it).
 */
export const HOME_DIR = ".capflow";

/** The capflow checkout this CLI runs from (packages/cli/src/ → three levels up). */
export const INSTALL_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export interface HomeSearch {
  /** The home found, or where a new one goes (`<cwd>/.capflow`). */
  home: string;
  found: boolean;
  /** Every folder looked at, in order. */
  searched: string[];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

export function findHome(cwd: string, installRoot = INSTALL_ROOT): HomeSearch {
  const searched: string[] = [];
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, HOME_DIR);
    searched.push(candidate);
    if (isDir(candidate)) return { home: candidate, found: true, searched };
    if (path.dirname(dir) === dir) break;
  }
  const installed = path.join(installRoot, HOME_DIR);
  if (!searched.includes(installed)) {
    searched.push(installed);
    if (isDir(installed)) return { home: installed, found: true, searched };
  }
  return { home: path.resolve(cwd, HOME_DIR), found: false, searched };
}

/** Whether a command's configuration leaves anything to the home (embedded Redis or the local store). */
export function needsHome(env: NodeJS.ProcessEnv, command = ""): boolean {
  const redisElsewhere = Boolean(env.CAPFLOW_REDIS_URL);
  if (REDIS_ONLY.has(command)) return !redisElsewhere;
  const storeElsewhere = env.CAPFLOW_STORE === "s3" || Boolean(env.CAPFLOW_STORE_DIR);
  if (STORE_ONLY.has(command)) return !storeElsewhere;
  return !(redisElsewhere && storeElsewhere);
}

/** Commands that use Redis but never the store. */
const REDIS_ONLY = new Set(["queue"]);
/** Commands that use the store but never Redis. */
const STORE_ONLY = new Set(["export"]);

/** Commands that may start a new home; every other one works on data that must already exist. */
export const CREATES_HOME = new Set(["ingest", "up", "demo", "worker", "api", "dataset"]);

export class NoHomeError extends Error {
  override name = "NoHomeError";
  constructor(command: string, search: HomeSearch) {
    super(
      `no capflow home for \`capflow ${command}\`: looked for ${HOME_DIR} in\n` +
        search.searched.map((s) => `  ${s}`).join("\n") +
        `\nRun it from the folder where you ran \`capflow ingest\`/\`capflow up\`, set CAPFLOW_HOME to that ` +
        `.capflow folder, or set CAPFLOW_REDIS_URL and CAPFLOW_STORE (s3) / CAPFLOW_STORE_DIR.`,
    );
  }
}

/**
 * Sets CAPFLOW_HOME (absolute, so every child process agrees) unless the user set it. Returns a line
 * for stderr when a new home is about to be created, so that is never silent either.
 */
export function settleHome(command: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (env.CAPFLOW_HOME) {
    const home = path.resolve(cwd, env.CAPFLOW_HOME);
    env.CAPFLOW_HOME = home;
    if (!isDir(home) && needsHome(env, command) && !CREATES_HOME.has(command))
      throw new NoHomeError(command, { home, found: false, searched: [`${home} (CAPFLOW_HOME)`] });
    return undefined;
  }
  const search = findHome(cwd);
  env.CAPFLOW_HOME = search.home;
  if (search.found || !needsHome(env, command)) return undefined;
  if (!CREATES_HOME.has(command)) throw new NoHomeError(command, search);
  return `capflow: no ${HOME_DIR} found in ${path.resolve(cwd)} or above it, nor in ${INSTALL_ROOT}: a new home goes in ${search.home}`;
}
