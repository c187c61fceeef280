/**
 * `pnpm lint`: the repository stands alone. No file may point at a path outside it (a relative path
 * that climbs above the root) or cite design notes that are not in it: what the code needs to cite
 * lives in docs/. Prints each offence as file:line and exits 1.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = execFileSync("git", ["rev-parse", "--show-toplevel"], { encoding: "utf8" }).trim();
const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: root, encoding: "utf8" })
  .split("\n")
  .filter((f) => f && !/(^|\/)pnpm-lock\.yaml$|\.(png|jpe?g|gif|webp|npy|bin|onnx)$/i.test(f));

const NOTES_OUTSIDE = /\b(DESIGN|RELIABILITY|STYLE|ENVIRONMENT)\.md\b/;
const CLIMBING = /(?:\.\.\/)+[\w.@-][\w./@-]*/g;

const offences: string[] = [];
for (const file of files) {
  const full = path.join(root, file);
  if (!fs.existsSync(full) || fs.statSync(full).size > 2_000_000) continue;
  const text = fs.readFileSync(full, "utf8");
  if (text.includes("\u0000")) continue;
  text.split("\n").forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (NOTES_OUTSIDE.test(line)) offences.push(`${where}: cites a note that is not in the repository`);
    for (const m of line.matchAll(CLIMBING)) {
      const target = path.resolve(path.dirname(full), m[0]);
      if (path.relative(root, target).startsWith(".."))
        offences.push(`${where}: ${m[0]} points outside the repository`);
    }
  });
}

if (offences.length > 0) {
  process.stderr.write(`${offences.join("\n")}\n\nWrite what is needed into docs/ and cite that instead.\n`);
  process.exit(1);
}
