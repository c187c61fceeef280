import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { undeclaredImports } from "../../scripts/lint/declared-deps.ts";
import { tempDir } from "../support/services.ts";

// scripts/lint/declared-deps.ts (in `pnpm lint`): a workspace package must declare what its source
// imports; the checkout's root hides a missing one, a production install does not.
describe("declared dependencies (pnpm lint)", () => {
  it("flags run-time imports a package does not declare, and leaves type-only imports, builtins and relative paths", async () => {
    const dir = await tempDir("declared-deps");
    await fs.mkdir(path.join(dir, "src", "test"), { recursive: true });
    await fs.writeFile(
      path.join(dir, "package.json"),
      JSON.stringify({
        name: "@capflow/probe",
        dependencies: { zod: "1" },
        devDependencies: { vitest: "1" },
      }),
    );
    await fs.writeFile(
      path.join(dir, "src", "a.ts"),
      [
        'import { z } from "zod";',
        'import type { Foo } from "@capflow/only-types";',
        'import fs from "node:fs";',
        'import path from "path";',
        'import { b } from "./b.ts";',
        'import { x } from "@capflow/ml/sub";',
        'export { y } from "left-pad";',
        'const lazy = () => import("onnxruntime-node");',
      ].join("\n"),
    );
    // Tests may use development dependencies.
    await fs.writeFile(path.join(dir, "src", "a.test.ts"), 'import { it } from "vitest";\n');
    await fs.writeFile(path.join(dir, "src", "test", "helper.ts"), 'import { it } from "vitest";\n');
    try {
      expect(undeclaredImports(dir).sort()).toEqual(
        ["src/a.ts: @capflow/ml", "src/a.ts: left-pad", "src/a.ts: onnxruntime-node"].sort(),
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("finds every workspace package's imports declared", async () => {
    const root = path.resolve(import.meta.dirname, "../..");
    for (const name of await fs.readdir(path.join(root, "packages")))
      expect(undeclaredImports(path.join(root, "packages", name)), name).toEqual([]);
  });
});
