import fs from "node:fs/promises";
import { chromium, type BrowserContext } from "playwright-core";
import { tempDir } from "./services.ts";

/**
 * Debian's Chromium driven by playwright-core: a browser download (`playwright install`) is not
 * reachable on the build machines. Headless, no sandbox (the suite runs as root), no GPU, and nothing
 * fetched or synced in the background, so a test page is all the browser loads.
 */
const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

/** Fails at once, naming the package to install, when Chromium is not there. */
export async function requireChromium(): Promise<void> {
  await fs.access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} missing: apt-get install -y chromium (scripts/test.sh does)`);
  });
}

export interface Chromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Chromium on a fresh profile (a temp dir named after `profile`). */
export async function launchChromium(
  profile: string,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<Chromium> {
  await requireChromium();
  const userDataDir = await tempDir(profile);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      await fs.rm(userDataDir, { recursive: true, force: true });
    },
  };
}
