// `pnpm bench <name> [args]`: runs scripts/bench/<name>.ts. Benchmarks print labelled figures,
// ideally as a ratio against a baseline measured in the same run; they never run in the test suite.
import { readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = path.join(import.meta.dirname, "bench");
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort();
const name = process.argv[2];
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: pnpm bench <name> [args]\navailable: ${available.join(", ")}\n`);
  process.exit(name ? 1 : 0);
}
process.argv.splice(2, 1);
await import(pathToFileURL(path.join(dir, `${name}.ts`)).href);
