import fs from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

/**
 * Every package a workspace package's source imports at run time must be in its own package.json
 * (dependencies, optionalDependencies or peerDependencies). The development tree hides a missing
 * one: the root package lists every workspace package, so `@capflow/ml` resolved from the CLI's code
 * in the checkout while a production install (what the images ship) failed `capflow train` with
 * "Cannot find package '@capflow/ml'". Type-only imports and tests are exempt.
 * Usage: tsx scripts/lint/declared-deps.ts  (exit 1 and a list when one is missing).
 */

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const BUILTINS = new Set(builtinModules);

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; undefined for relative paths and builtins. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:"))
    return undefined;
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
  return BUILTINS.has(name) ? undefined : name;
}

/** Module specifiers a file imports at run time (static, re-exports, dynamic `import("x")`). */
export function runtimeImports(file: string, text = fs.readFileSync(file, "utf8")): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isImportDeclaration(node) &&
      !node.importClause?.isTypeOnly &&
      ts.isStringLiteral(node.moduleSpecifier)
    )
      out.push(node.moduleSpecifier.text);
    else if (
      ts.isExportDeclaration(node) &&
      !node.isTypeOnly &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    )
      out.push(node.moduleSpecifier.text);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    )
      out.push(node.arguments[0].text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const isTest = (file: string) => /\.test\.ts$/.test(file) || file.split(path.sep).includes("test");

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules") out.push(...sourceFiles(p));
    } else if (/\.(ts|js|mjs)$/.test(e.name) && !isTest(p)) out.push(p);
  }
  return out;
}

/** Imports of a package's `src/` that its own package.json does not declare, as "file: package". */
export function undeclaredImports(packageDir: string): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")) as Manifest;
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  const problems: string[] = [];
  const src = path.join(packageDir, "src");
  if (!fs.existsSync(src)) return problems;
  for (const file of sourceFiles(src))
    for (const spec of runtimeImports(file)) {
      const pkg = packageOf(spec);
      if (pkg && !declared.has(pkg)) problems.push(`${path.relative(packageDir, file)}: ${pkg}`);
    }
  return problems;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = path.resolve(import.meta.dirname, "../..");
  const problems: string[] = [];
  for (const name of fs.readdirSync(path.join(root, "packages")).sort()) {
    const dir = path.join(root, "packages", name);
    if (!fs.existsSync(path.join(dir, "package.json"))) continue;
    for (const p of undeclaredImports(dir)) problems.push(`packages/${name}/${p}`);
  }
  if (problems.length > 0) {
    console.error(
      `imports missing from their package's package.json (a production install cannot resolve them):\n  ${problems.join("\n  ")}`,
    );
    process.exit(1);
  }
}
