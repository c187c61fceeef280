import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const capflow = (...args: string[]) =>
  execFileSync(
    process.execPath,
    [
      "--import",
      path.join(root, "node_modules/tsx/dist/loader.mjs"),
      path.join(root, "packages/cli/src/main.ts"),
      ...args,
    ],
    { encoding: "utf8", cwd: root },
  );

describe("the capflow command", () => {
  it("prints its version from the cli package", async () => {
    const { version } = (await import("../package.json", { with: { type: "json" } })).default;
    expect(capflow("--version").trim()).toBe(`capflow ${version} (node ${process.version})`);
    expect(capflow("-V").trim()).toMatch(/^capflow \d+\.\d+\.\d+ /);
  });

  it("lists the roles' commands in its help", () => {
    const help = capflow("--help");
    for (const cmd of ["demo", "ingest", "worker", "train", "caption", "reconcile", "--version"])
      expect(help).toContain(cmd);
  });
});
