// Files of a dataset folder: existence checks, listing, streamed lines, and image paths that cannot
// lead outside the folder (by `..` or by a symlink).
import { createReadStream } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";

/**
 * An image path from a caption file, made safe to join to the images dir: relative, forward
 * slashes, no `..` segment. Returns undefined for a path that would escape the folder.
 */
export function safeImagePath(raw: string): string | undefined {
  const p = raw.trim().replace(/\\/g, "/");
  if (p === "" || p.startsWith("/") || /^[a-zA-Z]:/.test(p)) return undefined;
  const norm = path.posix.normalize(p);
  if (norm === ".." || norm.startsWith("../") || norm === ".") return undefined;
  return norm;
}

export async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * The real path of `rel` under `dir` when it is a regular file that stays inside `dir` once every
 * symlink is resolved, else undefined. A symlink in an images folder (`link.jpg -> /etc/hostname`)
 * was followed and its target stored as a dataset image; `dir` itself may be a symlink (a dataset
 * folder pointing at a mounted disk), so the comparison is between real paths.
 */
export async function containedFile(dir: string, rel: string): Promise<string | undefined> {
  try {
    const [root, real] = await Promise.all([realpath(dir), realpath(path.join(dir, rel))]);
    if (!real.startsWith(root + path.sep)) return undefined;
    return (await stat(real)).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** Reads an image of a dataset, refusing one that resolves outside its folder (see containedFile). */
export async function readContainedFile(dir: string, rel: string): Promise<Buffer> {
  const real = await containedFile(dir, rel);
  if (!real) throw new Error(`image ${rel} is not a file inside ${dir}`);
  return readFile(real);
}

export async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function firstExisting(
  candidates: readonly string[],
  test: (p: string) => Promise<boolean>,
): Promise<string | undefined> {
  for (const c of candidates) if (await test(c)) return c;
  return undefined;
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** Lines of a text file, streamed, 1-based, without a leading BOM. */
export async function* readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      yield { text: line === 1 ? text.replace(/^\uFEFF/, "") : text, line };
    }
  } finally {
    rl.close();
  }
}
