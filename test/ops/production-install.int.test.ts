import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@capflow/common";
import { CHECKOUT, productionTree, startRole as startProductionRole } from "../support/production-tree.ts";
import { freshPrefix, redisUrl, tempDir } from "../support/services.ts";
import { waitFor } from "../support/wait-for.ts";

/**
 * What the images' runtime stage holds, without Docker: the build context (.dockerignore applied)
 * copied to a fresh folder, the same frozen production-only install the Dockerfiles' build stage
 * makes (`--offline` here: the store the dev install filled has every package), then roles started
 * from that tree the way the image's ENTRYPOINT starts them. A module that only a dev dependency
 * provides (tsx was one: the entry point loads it) fails the start.
 */

/** Tools that must never reach an image. */
const DEV_ONLY = [
  "vitest",
  "typescript",
  "eslint",
  "prettier",
  "knip",
  "playwright-core",
  "dependency-cruiser",
  "s3rver",
  "kubernetes-models",
  "dockerfile-utils",
];

let app = "";
let work = "";
const children: ChildProcess[] = [];

beforeAll(async () => {
  ({ work, app } = await productionTree("prod-install"));
}, 300_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

function startRole(args: string[], env: Record<string, string>) {
  const role = startProductionRole(app, args, env);
  children.push(role.child);
  return { child: role.child, output: role.output };
}

describe("the production-only install the images ship", () => {
  it("holds no dev tools", () => {
    const installed = fs.readdirSync(path.join(app, "node_modules/.pnpm"));
    const leaked = DEV_ONLY.filter((name) =>
      installed.some((d) => d.startsWith(`${name.replace("/", "+")}@`)),
    );
    expect(leaked).toEqual([]);
    expect(fs.existsSync(path.join(app, "node_modules/tsx/dist/loader.mjs"))).toBe(true);
    console.warn(
      `[prod-install] ${installed.length} packages in the production tree (the dev tree: ${fs.readdirSync(path.join(CHECKOUT, "node_modules/.pnpm")).length})`,
    );
  });

  it("starts the API and the trainer from it, ready on /healthz, and stops them cleanly on SIGTERM", async () => {
    const home = await tempDir("prod-home");
    const base = {
      HOME: home,
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: freshPrefix(),
      CAPFLOW_STORE: "local",
      CAPFLOW_STORE_DIR: path.join(home, "store"),
      CAPFLOW_HOME: path.join(home, "capflow"),
      CAPFLOW_LOG_LEVEL: "warn",
      NODE_ENV: "production",
    };
    const [apiPort, opsPort] = [await freePort(), await freePort()];
    const roles = [
      {
        name: "api",
        port: apiPort,
        ...startRole(["api"], { ...base, CAPFLOW_API_HOST: "127.0.0.1", CAPFLOW_API_PORT: String(apiPort) }),
      },
      {
        name: "worker training",
        port: opsPort,
        ...startRole(["worker", "training"], { ...base, CAPFLOW_OPS_PORT: String(opsPort) }),
      },
    ];
    try {
      for (const r of roles) {
        await waitFor(
          `${r.name} /healthz from the production tree`,
          async () => {
            if (r.child.exitCode !== null)
              throw new Error(`${r.name} exited ${r.child.exitCode}:\n${r.output()}`);
            return (await fetch(`http://127.0.0.1:${r.port}/healthz`).catch(() => undefined))?.ok;
          },
          { timeoutMs: 180_000, everyMs: 500 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${r.output()}`);
        });
      }
      for (const r of roles) {
        const exited = once(r.child, "exit");
        r.child.kill("SIGTERM");
        const [code] = (await exited) as [number | null];
        expect(code, `${r.name}: ${r.output()}`).toBe(0);
      }
    } finally {
      await fsp.rm(home, { recursive: true, force: true });
    }
  });
});
