import fs from "node:fs";
import path from "node:path";
import semver from "semver";
import YAML from "yaml";

/**
 * The Node version capflow states (the Dockerfiles' NODE_VERSION, package.json's engines) must be
 * accepted by the `engines.node` of every package in pnpm-lock.yaml. Node 20 (end of life) was
 * shipped while commander@15 declared node >= 22.12: this check makes that a CI failure. The README's
 * stated version is checked the same way.
 * Usage: tsx scripts/lint/check-engines.ts  (exit 1 and a list of packages when one refuses).
 */
const ROOT = path.resolve(import.meta.dirname, "../..");
const lock = YAML.parse(fs.readFileSync(path.join(ROOT, "pnpm-lock.yaml"), "utf8")) as {
  packages?: Record<string, { engines?: { node?: string }; os?: string[]; cpu?: string[] }>;
};

function dockerNode(file: string): string {
  const m = /^ARG NODE_VERSION=(\S+)/m.exec(fs.readFileSync(path.join(ROOT, file), "utf8"));
  if (!m) throw new Error(`${file}: no "ARG NODE_VERSION=x.y.z"`);
  return m[1]!;
}

/** The version the README's quick start states ("with Node 22.13+"), as x.y.0. */
function readmeNode(): string {
  const m = /with Node (\d+)\.(\d+)\+/.exec(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"));
  if (!m) throw new Error('README.md: no "with Node <major>.<minor>+" in the quick start');
  return `${m[1]}.${m[2]}.0`;
}

const versions = new Map<string, string>([
  ["deploy/docker/Dockerfile", dockerNode("deploy/docker/Dockerfile")],
  ["deploy/docker/Dockerfile.gpu", dockerNode("deploy/docker/Dockerfile.gpu")],
  ["README.md", readmeNode()],
]);
const rootRange = (
  JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    engines: { node: string };
  }
).engines.node;

const problems: string[] = [];
for (const [where, v] of versions) {
  if (!semver.satisfies(v, rootRange))
    problems.push(`${where}: node ${v} is outside package.json engines "${rootRange}"`);
  for (const [pkg, meta] of Object.entries(lock.packages ?? {})) {
    // Platform binaries for other systems (sharp's win32-ia32 build...) are never installed in the images.
    if (meta.os && !meta.os.includes("linux")) continue;
    if (meta.cpu && !meta.cpu.some((c) => c === "x64" || c === "arm64")) continue;
    const range = meta.engines?.node;
    if (range && !semver.satisfies(v, range))
      problems.push(`${where}: node ${v} refused by ${pkg} (engines.node "${range}")`);
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(
  `engines: node ${[...new Set(versions.values())].join(", ")} accepted by all ${Object.keys(lock.packages ?? {}).length} locked packages`,
);
