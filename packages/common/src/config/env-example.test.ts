import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../../../..");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (name === "node_modules" || name === "test") return [];
    if (statSync(full).isDirectory()) return sources(full);
    return full.endsWith(".ts") && !full.endsWith(".test.ts") ? [full] : [];
  });
}

describe(".env.example", () => {
  it("documents every CAPFLOW_ variable the code reads", () => {
    const documented = new Set(
      readFileSync(path.join(root, ".env.example"), "utf8").match(
        /CAPFLOW_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])/g,
      ),
    );
    const used = new Set(
      sources(path.join(root, "packages")).flatMap(
        (f) => readFileSync(f, "utf8").match(/CAPFLOW_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])/g) ?? [],
      ),
    );
    const missing = [...used].filter((v) => !documented.has(v)).sort();
    expect(missing).toEqual([]);
  });
});
