import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readLines } from "./dataset-files.ts";
import {
  locateDataset,
  readDataset,
  type DatasetFormat,
  type DatasetRecord,
  type ReadIssue,
  type SourcePosition,
} from "./index.ts";

// A distributed ingest worker reads its range from where the range's first record starts
// (ReadOptions.from) instead of skipping every record before it.

const RECORDS = 40;
const K = 25; // the record a read starts at
const BAD_AFTER = 30; // a malformed line follows this record's lines
const tmpDirs: string[] = [];

async function tmp(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "capflow-from-"));
  tmpDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

const name = (i: number) => `img_${String(i).padStart(3, "0")}.jpg`;

/** Caption files of each line-oriented format, with a line the reader must report as malformed. */
const writers: Record<Exclude<DatasetFormat, "coco">, (dir: string) => Promise<void>> = {
  "jsonl-folder": async (dir) => {
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      lines.push(JSON.stringify({ image: name(i), captions: [`caption ${i}`, `another é ${i}`] }));
      // A second line for the same image is merged into its record.
      if (i % 7 === 0) lines.push(JSON.stringify({ image: name(i), caption: `more of ${i}` }));
      if (i === BAD_AFTER) lines.push('{"image": "broken", ');
    }
    await writeFile(path.join(dir, "captions.jsonl"), `${lines.join("\n")}\n`);
  },
  // Five lines per image, as the real file has, saved with Windows line ends.
  "flickr8k-token": async (dir) => {
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      for (let n = 0; n < 5; n++) lines.push(`${name(i)}#${n}\tcaption ${n} of image ${i} .`);
      if (i === BAD_AFTER) lines.push("a line without a tab");
    }
    await writeFile(path.join(dir, "Flickr8k.token.txt"), `${lines.join("\r\n")}\r\n`);
  },
  // Real CSV: quoted commas and a caption quoted over two lines, before and after the start.
  "flickr8k-csv": async (dir) => {
    const lines = ["image,caption"];
    for (let i = 0; i < RECORDS; i++) {
      lines.push(`${name(i)},a plain caption ${i} .`);
      lines.push(i % 9 === 0 ? `${name(i)},"two\nlines, ${i}"` : `${name(i)},"with, a comma ${i}"`);
      if (i === BAD_AFTER) lines.push(`${name(i)},three,columns`);
    }
    await writeFile(path.join(dir, "captions.txt"), `${lines.join("\n")}\n`);
  },
  flickr30k: async (dir) => {
    const lines = ["image_name| comment_number| comment"];
    for (let i = 0; i < RECORDS; i++) {
      for (let n = 0; n < 3; n++) lines.push(`${name(i)}| ${n}| comment ${n} of ${i} .`);
      if (i === BAD_AFTER) lines.push(`${name(i)}| 3 lost its second bar`);
    }
    await writeFile(path.join(dir, "results.csv"), `${lines.join("\n")}\n`);
  },
};

async function read(format: DatasetFormat, dir: string, onError: "skip" | "fail", from?: SourcePosition) {
  const records: DatasetRecord[] = [];
  const issues: ReadIssue[] = [];
  const opts = { onError, onIssue: (i: ReadIssue) => void issues.push(i), checkImages: false };
  for await (const r of readDataset(format, dir, from ? { ...opts, from } : opts)) records.push(r);
  return { records, issues };
}

/** Overwrites the bytes before `byte` with a line no reader can parse (same length: offsets hold). */
async function garbleBefore(file: string, byte: number): Promise<void> {
  const bytes = await readFile(file);
  bytes.fill("{", 0, byte - 1);
  bytes[byte - 1] = 0x0a;
  await writeFile(file, bytes);
}

describe("a reader started at a record's start", () => {
  it.each(Object.keys(writers) as Array<keyof typeof writers>)(
    "%s: yields that record and those after it, names the file's lines, never reads the bytes before",
    async (format) => {
      const dir = await tmp();
      await writers[format](dir);
      const file = (await locateDataset(format, dir)).files[0]!;
      const whole = await read(format, dir, "skip");
      expect(whole.records.map((r) => r.image)).toEqual(Array.from({ length: RECORDS }, (_, i) => name(i)));
      const malformed = whole.issues.filter((i) => i.kind === "malformed");
      expect(malformed).toHaveLength(1);
      const badLine = malformed[0]!.line!;
      const from = whole.records[K]!.start!;
      expect(from.byte).toBeGreaterThan(0);

      await garbleBefore(file, from.byte);
      // From the beginning the garbage is the first thing read ...
      await expect(read(format, dir, "fail")).rejects.toThrow(`${file}:1:`);
      // ... from the offset it is never seen: the same records, captions grouped as in the whole read,
      // and the malformed line reported with its line number in the file.
      const part = await read(format, dir, "skip", from);
      expect(part.records).toEqual(whole.records.slice(K));
      expect(part.issues).toEqual(malformed);
      await expect(read(format, dir, "fail", from)).rejects.toThrow(`${file}:${badLine}:`);
    },
  );

  it("flickr8k-token: a record is an image, so a start is the first of its five lines", async () => {
    const dir = await tmp();
    await writers["flickr8k-token"](dir);
    const { records } = await read("flickr8k-token", dir, "skip");
    // Lines 1-5 are image 0, ...; image K's first line is 5K + 1 (the malformed line comes after 30).
    expect(records[K]).toMatchObject({ captions: expect.any(Array), line: 5 * K + 1 });
    expect(records[K]!.captions).toHaveLength(5);
    expect(records[K]!.start!.line).toBe(5 * K + 1);
    const text = await readFile((await locateDataset("flickr8k-token", dir)).files[0]!);
    expect(
      text
        .subarray(records[K]!.start!.byte)
        .toString()
        .startsWith(`${name(K)}#0\t`),
    ).toBe(true);
  });

  it("coco: one JSON document cannot be read from an offset, and says so", async () => {
    const coco = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/coco");
    await expect(read("coco", coco, "skip", { byte: 10, line: 2 })).rejects.toThrow(
      /coco: .* cannot be read from an offset/,
    );
  });
});

describe("readLines", () => {
  const lines = async (file: string, from?: SourcePosition) => {
    const out: Array<{ text: string; line: number; byte: number }> = [];
    for await (const l of readLines(file, from)) out.push(l);
    return out;
  };

  it("splits where node:readline does (\\n, \\r\\n, a lone \\r) and gives each line's byte offset", async () => {
    const file = path.join(await tmp(), "t.txt");
    await writeFile(file, "\uFEFFa\r\nb\rcé\n\nd");
    expect(await lines(file)).toEqual([
      { text: "a", line: 1, byte: 0 },
      { text: "b", line: 2, byte: 6 },
      { text: "cé", line: 3, byte: 8 },
      { text: "", line: 4, byte: 12 },
      { text: "d", line: 5, byte: 13 },
    ]);
    expect(await lines(file, { byte: 8, line: 3 })).toEqual((await lines(file)).slice(2));
  });

  it("keeps a \\r\\n split across two reads as one line end, and a line longer than a read whole", async () => {
    const file = path.join(await tmp(), "t.txt");
    // The stream reads 64 KiB at a time: the \r is the first read's last byte, the \n the next's first.
    const long = "x".repeat(65_535);
    await writeFile(file, `${long}\r\ny\n${"z".repeat(200_000)}\nlast`);
    expect((await lines(file)).map((l) => [l.text.length, l.line, l.byte])).toEqual([
      [65_535, 1, 0],
      [1, 2, 65_537],
      [200_000, 3, 65_539],
      [4, 4, 265_540],
    ]);
  });
});
