import fs from "node:fs";
import path from "node:path";
import dockerignoreModule from "@balena/dockerignore";

// A CommonJS module whose types declare an ES default export; it sets `.default` to itself for this.
const dockerignore = dockerignoreModule.default;

export interface DockerContext {
  /** Every file `docker build` would send, relative to the root, with `/` separators. */
  files: string[];
  ignored: (relPath: string) => boolean;
  patterns: string[];
}

/** The build context of `root`: the files its .dockerignore leaves, matched with Docker's own rules. */
export function dockerContext(root: string): DockerContext {
  const patterns = fs
    .readFileSync(path.join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const ig = dockerignore().add(patterns);
  const ignored = (p: string) => ig.ignores(p);
  const files: string[] = [];
  // Without exceptions (`!`), Docker skips an excluded folder whole; so does this walk.
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (ignored(p)) continue;
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk("");
  return { files, ignored, patterns };
}
