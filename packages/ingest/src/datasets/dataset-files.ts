// Files of a dataset folder: existence checks, listing, streamed lines, and image paths that cannot
// lead outside the folder (by `..` or by a symlink).
import { createReadStream } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { SourcePosition } from "./types.ts";

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

/**
 * Lines of a text file, streamed, 1-based, without a leading BOM, each with the byte offset where it
 * starts. `from` starts at a line's offset (and numbers lines from its number): the bytes before it
 * are never read. Line ends are those of node:readline (`\n`, `\r\n`, a lone `\r`), so line numbers
 * are the ones readline gave; readline cannot say where a line starts in bytes (a decoded line's
 * length does not give it: `\r\n` or `\n`, U+FFFD for an invalid byte), hence this splitter.
 */
export async function* readLines(
  file: string,
  from: SourcePosition = { byte: 0, line: 1 },
): AsyncGenerator<{ text: string; line: number; byte: number }> {
  let line = from.line;
  let lineByte = from.byte; // where the current line starts
  let offset = from.byte; // where the current chunk starts
  let pieces: Buffer[] = []; // the current line's bytes from earlier chunks (a line may span many)
  let skipLF = false; // the last chunk ended with a \r: a \n first in this one is its pair
  const decode = (bytes: Buffer) => {
    const text = bytes.toString("utf8");
    return lineByte === 0 ? text.replace(/^\uFEFF/, "") : text;
  };
  for await (const chunk of createReadStream(file, { start: from.byte }) as AsyncIterable<Buffer>) {
    let start = 0;
    if (skipLF && chunk[0] === 0x0a) lineByte = offset + ++start;
    skipLF = false;
    // The next \n and \r, searched for again only once passed: each byte is scanned once.
    let lf = chunk.indexOf(0x0a, start);
    let cr = chunk.indexOf(0x0d, start);
    for (;;) {
      if (lf !== -1 && lf < start) lf = chunk.indexOf(0x0a, start);
      if (cr !== -1 && cr < start) cr = chunk.indexOf(0x0d, start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(lf, cr);
      if (end === -1) break;
      const tail = chunk.subarray(start, end);
      const bytes = pieces.length === 0 ? tail : Buffer.concat([...pieces, tail]);
      pieces = [];
      yield { text: decode(bytes), line, byte: lineByte };
      line++;
      start = end === cr && chunk[end + 1] === 0x0a ? end + 2 : end + 1;
      if (end === cr && end + 1 === chunk.length) skipLF = true;
      lineByte = offset + start;
    }
    if (start < chunk.length) pieces.push(chunk.subarray(start));
    offset += chunk.length;
  }
  if (pieces.length > 0) yield { text: decode(Buffer.concat(pieces)), line, byte: lineByte };
}
