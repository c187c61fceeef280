import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LocalStore, parseJobData, UnrecoverableError, type DatasetFormat } from "@capflow/common";
import { enumerateRanges } from "./enumerate-ranges.ts";
import { readRangePart, storeRange } from "./store-range.ts";

// An ingest worker's range, planned by the command (enumerateRanges) and stored by storeRange, as
// the `ingest` queue carries it between them (the job catalog's schema).

const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "capflow-range-"));
  tmpDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

const name = (i: number) => `img_${String(i).padStart(3, "0")}.jpg`;

async function plannedJobs(format: DatasetFormat, dir: string, rangeSize: number) {
  const plan = await enumerateRanges(dir, { dataset: "ranges", format, rangeSize, onError: "skip" });
  return plan.ranges.map((r) =>
    parseJobData("ingest", { runId: plan.runId, dataset: "ranges", format, dir, ...r }),
  );
}

describe("storeRange", () => {
  it("stores a jsonl range read from its offset, with its missing images' lines, and refuses changed records or captions", async () => {
    const dir = await tmp();
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) {
      lines.push(JSON.stringify({ image: name(i), captions: [`caption ${i}`] }));
      if (i !== 35) await writeFile(path.join(dir, name(i)), `image bytes ${i}`);
    }
    const file = path.join(dir, "captions.jsonl");
    await writeFile(file, `${lines.join("\n")}\n`);
    const jobs = await plannedJobs("jsonl-folder", dir, 16);
    expect(jobs.map((j) => [j.start, j.end, j.from])).toEqual([
      [0, 16, { byte: 0, line: 1 }],
      [16, 32, { byte: expect.any(Number), line: 17 }],
      [32, 40, { byte: expect.any(Number), line: 33 }],
    ]);

    // The caption lines before the last range become unparseable: it does not read them.
    const last = jobs[2]!;
    const bytes = await readFile(file);
    bytes.fill("#", 0, last.from!.byte - 1);
    await writeFile(file, bytes);
    const store = new LocalStore(await tmp());
    expect(await storeRange(store, last, { concurrency: 4 })).toEqual({ records: 8, alreadyDone: false });
    const part = await readRangePart(store, last.runId, 2);
    expect(part.records.map((r) => r.image)).toEqual([32, 33, 34, 36, 37, 38, 39].map(name));
    expect(part.records[0]!.captions).toEqual(["caption 32"]);
    expect(part.issues).toEqual([
      expect.objectContaining({
        kind: "missing-image",
        line: 36,
        file,
        message: expect.stringContaining(name(35)),
      }),
    ]);

    // The range before it now starts in the garbage: it reads other records and fails, writing nothing.
    const changed = storeRange(store, jobs[1]!, { concurrency: 4 });
    await expect(changed).rejects.toThrow(UnrecoverableError);
    await expect(changed).rejects.toThrow(/records changed since it was enumerated/);
    await expect(readRangePart(store, last.runId, 1)).rejects.toThrow();

    // A caption of the last range changed (same length: the offsets still hold), not its images: the
    // range fails too, rather than put a caption the command did not enumerate into the manifest.
    await writeFile(file, (await readFile(file, "utf8")).replace('"caption 34"', '"caption 3X"'));
    await expect(storeRange(new LocalStore(await tmp()), last, { concurrency: 4 })).rejects.toThrow(
      /records changed since it was enumerated/,
    );
  });

  it("plans Flickr8k token ranges at image starts, each image's five lines in one range", async () => {
    const dir = await tmp();
    const lines: string[] = [];
    for (let i = 0; i < 40; i++)
      for (let n = 0; n < 5; n++) lines.push(`${name(i)}#${n}\tcaption ${n} of ${i} .`);
    await mkdir(path.join(dir, "Flicker8k_Dataset"));
    for (let i = 16; i < 32; i++)
      await writeFile(path.join(dir, "Flicker8k_Dataset", name(i)), `image bytes ${i}`);
    const file = path.join(dir, "Flickr8k.token.txt");
    await writeFile(file, `${lines.join("\n")}\n`);
    const jobs = await plannedJobs("flickr8k-token", dir, 16);
    expect(jobs.map((j) => j.from?.line)).toEqual([1, 81, 161]);

    const bytes = await readFile(file);
    bytes.fill("#", 0, jobs[1]!.from!.byte - 1);
    await writeFile(file, bytes);
    const store = new LocalStore(await tmp());
    await storeRange(store, jobs[1]!, { concurrency: 4 });
    const part = await readRangePart(store, jobs[1]!.runId, 1);
    expect(part.records.map((r) => r.image)).toEqual(Array.from({ length: 16 }, (_, i) => name(16 + i)));
    expect(part.records.every((r) => r.captions.length === 5)).toBe(true);
    expect(part.issues).toEqual([]);
  });

  it("stores a COCO range, which has no offset, by skipping to its records", async () => {
    const coco = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/coco");
    const jobs = await plannedJobs("coco", coco, 1);
    // Records come out sorted by image id: 37777, 87038 (its image is missing), 252219, 397133.
    expect(jobs).toHaveLength(4);
    expect(jobs.every((j) => j.from === undefined)).toBe(true);
    const store = new LocalStore(await tmp());
    await storeRange(store, jobs[2]!, { concurrency: 4 });
    const part = await readRangePart(store, jobs[2]!.runId, 2);
    expect(part.records.map((r) => r.image)).toEqual(["val2017/000000252219.jpg"]);
    expect(part.issues).toEqual([]);
    await storeRange(store, jobs[1]!, { concurrency: 4 });
    const missing = await readRangePart(store, jobs[1]!.runId, 1);
    expect(missing.records).toEqual([]);
    expect(missing.issues).toEqual([
      expect.objectContaining({
        kind: "missing-image",
        message: expect.stringContaining("000000087038.jpg"),
      }),
    ]);
  });
});
