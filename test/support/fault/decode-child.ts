// Runs preprocessImage on inputs in its own process, so a native crash (SIGSEGV, abort) or a hang is
// seen by the parent instead of taking it down. One JSON line per input:
//   {"i":3,"ok":false,"reason":"decode","rss":123456789}
// Modes: `corpus <dir>` (every file of a folder, sorted) and `fuzz <seed> <from> <to>`.
import fs from "node:fs/promises";
import path from "node:path";
import { preprocessImage } from "@capflow/ml";
import { fuzzSeeds, mutate } from "./bad-images.ts";

const [mode, a, b, c] = process.argv.slice(2);
const report = (i: number | string, r: { ok: boolean; reason?: string; pixels?: Float32Array }) => {
  const valid = r.ok
    ? r.pixels!.length === 299 * 299 * 3 && r.pixels!.every((x) => x >= -1 && x <= 1)
    : undefined;
  process.stdout.write(
    `${JSON.stringify({ i, ok: r.ok, reason: r.reason, valid, rss: process.memoryUsage().rss })}\n`,
  );
};

if (mode === "corpus") {
  const files = (await fs.readdir(a!)).sort();
  for (const f of files) report(f, await preprocessImage(await fs.readFile(path.join(a!, f))));
} else if (mode === "fuzz") {
  const seeds = await fuzzSeeds();
  for (let i = Number(b); i < Number(c); i++) report(i, await preprocessImage(mutate(seeds, Number(a), i)));
} else {
  throw new Error(`usage: decode-child corpus <dir> | fuzz <seed> <from> <to>`);
}
