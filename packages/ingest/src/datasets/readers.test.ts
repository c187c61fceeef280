import { mkdtemp, readFile, rm, writeFile, mkdir, cp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  DatasetReadError,
  detectFormat,
  locateDataset,
  readDataset,
  type DatasetFormat,
  type DatasetRecord,
  type ReadIssue,
} from "./index.ts";

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/fixtures");
const tmpDirs: string[] = [];

async function readAll(format: DatasetFormat, dir: string, onError: "skip" | "fail" = "skip") {
  const issues: ReadIssue[] = [];
  const records: DatasetRecord[] = [];
  for await (const r of readDataset(format, dir, { onError, onIssue: (i) => issues.push(i) }))
    records.push(r);
  return { records, issues };
}

/** A copy of a fixture with one file replaced, for malformed-input cases. */
async function variant(fixture: string, file: string, content: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "capflow-fixture-"));
  tmpDirs.push(dir);
  await cp(path.join(fixtures, fixture), dir, { recursive: true });
  await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
  await writeFile(path.join(dir, file), content);
  return dir;
}

afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("flickr8k-csv (Kaggle captions.txt)", () => {
  const dir = path.join(fixtures, "flickr8k-csv");

  it("groups five captions per image and keeps quoted commas and doubled quotes", async () => {
    const { records } = await readAll("flickr8k-csv", dir);
    expect(records.map((r) => r.image)).toEqual([
      "1000268201_693b08cb0e.jpg",
      "1001773457_577c3a7d70.jpg",
      "1002674143_1b742ab4b8.jpg",
    ]);
    expect(records.every((r) => r.captions.length === 5)).toBe(true);
    expect(records[1]!.captions[2]).toBe(
      "A black dog and a white dog with brown spots are staring at each other in the street , outside .",
    );
    expect(records[2]!.captions[1]).toBe(
      'A little girl , covered in paint , sits in front of a "rainbow" painting .',
    );
    expect(records[0]!.line).toBe(2);
    expect(records[0]!.split).toBeUndefined();
  });

  it("reports a missing image with its line and goes on", async () => {
    const { records, issues } = await readAll("flickr8k-csv", dir);
    expect(records.some((r) => r.image === "1003163366_44323f5815.jpg")).toBe(false);
    expect(issues).toEqual([expect.objectContaining({ kind: "missing-image", line: 17 })]);
    expect(issues[0]!.file).toBe(path.join(dir, "captions.txt"));
  });

  it("throws naming file and line for a missing image under onError 'fail'", async () => {
    await expect(readAll("flickr8k-csv", dir, "fail")).rejects.toThrow(
      /captions\.txt:17: image 1003163366_44323f5815\.jpg not found/,
    );
  });

  it("reports an unquoted comma row as malformed, with its line", async () => {
    const csv = (await readFile(path.join(dir, "captions.txt"), "utf8")).replace(
      "A girl going into a wooden building .",
      "A girl, going into a wooden building .",
    );
    const d = await variant("flickr8k-csv", "captions.txt", csv);
    const { records, issues } = await readAll("flickr8k-csv", d);
    expect(issues).toContainEqual(expect.objectContaining({ kind: "malformed", line: 3 }));
    expect(records[0]!.captions).toHaveLength(4);
    const err = await readAll("flickr8k-csv", d, "fail").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetReadError);
    expect((err as Error).message).toMatch(/captions\.txt:3: expected 2 columns/);
  });

  it("uses Flickr_8k.*Images.txt split lists when present", async () => {
    const d = await variant(
      "flickr8k-csv",
      "Flickr_8k.trainImages.txt",
      "1000268201_693b08cb0e.jpg\n1001773457_577c3a7d70.jpg\n",
    );
    await writeFile(path.join(d, "Flickr_8k.testImages.txt"), "1002674143_1b742ab4b8.jpg\n");
    const { records } = await readAll("flickr8k-csv", d);
    expect(records.map((r) => r.split)).toEqual(["train", "train", "test"]);
  });
});

describe("flickr8k-token (Flickr8k.token.txt)", () => {
  const dir = path.join(fixtures, "flickr8k-token");

  it("reads captions, assigns splits from the lists and skips the .jpg.1 lines with one warning", async () => {
    const { records, issues } = await readAll("flickr8k-token", dir);
    expect(records.map((r) => [r.image, r.split, r.captions.length])).toEqual([
      ["1000268201_693b08cb0e.jpg", "train", 5],
      ["1001773457_577c3a7d70.jpg", "val", 5],
      ["1002674143_1b742ab4b8.jpg", "test", 5],
    ]);
    expect(issues).toEqual([
      expect.objectContaining({
        kind: "skipped",
        line: 6,
        message: expect.stringContaining("2258277193_586949ec62.jpg.1"),
      }),
    ]);
  });

  it("does not fail on the known .jpg.1 quirk under onError 'fail'", async () => {
    const { records } = await readAll("flickr8k-token", dir, "fail");
    expect(records).toHaveLength(3);
  });

  it("finds the images in the misspelled Flicker8k_Dataset folder", async () => {
    expect((await locateDataset("flickr8k-token", dir)).imagesDir).toBe(path.join(dir, "Flicker8k_Dataset"));
  });

  it("reports a line without a tab as malformed", async () => {
    const d = await variant(
      "flickr8k-token",
      "Flickr8k_text/Flickr8k.token.txt",
      "1000268201_693b08cb0e.jpg#0 A child without a tab .\n1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n",
    );
    const { records, issues } = await readAll("flickr8k-token", d);
    expect(issues).toEqual([expect.objectContaining({ kind: "malformed", line: 1 })]);
    expect(records[0]!.captions).toEqual(["A girl going into a wooden building ."]);
  });
});

describe("flickr30k (results.csv)", () => {
  const dir = path.join(fixtures, "flickr30k");

  it("reads the '| ' separated rows and reports the row that lost its second '|' with its line", async () => {
    const { records, issues } = await readAll("flickr30k", dir);
    expect(records.map((r) => [r.image, r.captions.length])).toEqual([
      ["1000092795.jpg", 5],
      ["2199200615.jpg", 4],
      ["10002456.jpg", 5],
    ]);
    expect(records[0]!.captions[1]).toBe("Two young , White males are outside near many bushes .");
    expect(records[2]!.captions[4]).toBe('Three men on a large rig , one says "watch out" .');
    expect(issues).toEqual([
      expect.objectContaining({ kind: "malformed", line: 11, file: path.join(dir, "results.csv") }),
    ]);
  });

  it("throws with file and line under onError 'fail'", async () => {
    await expect(readAll("flickr30k", dir, "fail")).rejects.toThrow(/results\.csv:11: .*found one "\|"/);
  });
});

describe("coco (captions_*.json)", () => {
  const dir = path.join(fixtures, "coco");

  it("groups by image_id whatever the order, trims whitespace, sorts by id and sets the split", async () => {
    const { records, issues } = await readAll("coco", dir);
    expect(records.map((r) => r.image)).toEqual([
      "val2017/000000037777.jpg",
      "val2017/000000252219.jpg",
      "val2017/000000397133.jpg",
    ]);
    expect(records.map((r) => r.captions.length)).toEqual([6, 5, 5]);
    expect(records.every((r) => r.split === "val")).toBe(true);
    expect(records[0]!.captions).toContain("The dining table near the kitchen has a bowl of fruit on it.");
    expect(records[0]!.captions).toContain("A kitchen filled with a table, chairs and a bowl of fruit.");
    expect(records[1]!.captions[0]).toBe("A person on a skateboard and bike at a skate park.");
    expect(issues).toEqual([
      expect.objectContaining({
        kind: "missing-image",
        message: expect.stringContaining("000000087038.jpg"),
      }),
    ]);
  });

  it("reports an annotation for an unknown image", async () => {
    const json = JSON.parse(await readFile(path.join(dir, "annotations/captions_val2017.json"), "utf8"));
    json.annotations.push({ image_id: 1, id: 9, caption: "orphan" });
    const d = await variant("coco", "annotations/captions_val2017.json", JSON.stringify(json));
    const { issues } = await readAll("coco", d);
    expect(issues).toContainEqual(
      expect.objectContaining({ kind: "malformed", message: "annotations[19]: unknown image_id 1" }),
    );
  });
});

describe("jsonl-folder (captions.jsonl)", () => {
  const dir = path.join(fixtures, "jsonl-folder");

  it("reads caption and captions, merges consecutive lines, maps dev to val", async () => {
    const { records, issues } = await readAll("jsonl-folder", dir);
    expect(issues).toEqual([]);
    expect(records).toEqual([
      {
        image: "photos/cat.png",
        captions: ["A grey cat asleep on a sofa .", "a cat sleeping"],
        split: "train",
        line: 1,
        start: { byte: 0, line: 1 },
      },
      {
        image: "photos/dog.png",
        captions: ["A dog, wet, shaking off water .", "a wet dog"],
        line: 2,
        start: { byte: 111, line: 2 },
      },
      {
        image: "photos/bird.png",
        captions: ["A small bird on a branch"],
        split: "val",
        line: 4,
        start: { byte: 242, line: 4 },
      },
    ]);
  });

  it("refuses image paths that leave the folder and broken JSON, naming the line", async () => {
    const d = await variant(
      "jsonl-folder",
      "captions.jsonl",
      '{"image": "../../etc/passwd", "caption": "x"}\n{"image": "photos/cat.png", "caption": \n{"image": "photos/cat.png", "caption": "a cat"}\n',
    );
    const { records, issues } = await readAll("jsonl-folder", d);
    expect(issues.map((i) => [i.kind, i.line])).toEqual([
      ["malformed", 1],
      ["malformed", 2],
    ]);
    expect(records).toHaveLength(1);
    await expect(readAll("jsonl-folder", d, "fail")).rejects.toThrow(/captions\.jsonl:1: bad image path/);
  });
});

describe("detectFormat", () => {
  it("recognises every fixture", async () => {
    for (const f of ["flickr8k-csv", "flickr8k-token", "flickr30k", "coco", "jsonl-folder"] as const) {
      expect(await detectFormat(path.join(fixtures, f))).toBe(f);
    }
  });

  it("lists the expected files when nothing matches", async () => {
    await expect(detectFormat(os.tmpdir() + "/does-not-exist")).rejects.toThrow(
      /captions\.txt.*captions\.jsonl/,
    );
  });
});
