import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDataset, type DatasetRecord, type ReadIssue } from "../index.ts";
import { buildEmojiDataset, type BuildEmojiResult } from "./build-emoji-dataset.ts";
import { emojiCaptions } from "./captions.ts";
import { loadCaptionSources } from "./sources.ts";

describe("emoji captions", () => {
  const src = loadCaptionSources();
  const byLabel = (label: string) => src.emoji.find((e) => e.label === label)!;

  it("gives the dog face its CLDR name, an article, its short name and confirmed tags only", () => {
    expect(emojiCaptions(byLabel("dog face"), src)).toEqual([
      "dog face",
      "a dog face",
      "dog",
      "dog face: puppy",
    ]);
  });

  it("names flags 'the flag of X' and uses no ISO code", () => {
    expect(emojiCaptions(byLabel("flag: France"), src)).toEqual([
      "flag: France",
      "the flag of France",
      "france",
    ]);
  });

  it("skips a Unicode name that names another colour (HEAVY BLACK HEART) and articles for plurals", () => {
    const heart = emojiCaptions(byLabel("red heart"), src);
    expect(heart.join(" | ")).not.toMatch(/black/);
    expect(emojiCaptions(byLabel("sparkles"), src).some((c) => /^an? /.test(c))).toBe(false);
  });

  it("drops CLDR slang that no second source confirms", () => {
    expect(emojiCaptions(byLabel("dog face"), src).join(" ")).not.toMatch(/adorbs/);
  });
});

describe("buildEmojiDataset (ci)", () => {
  let dir: string;
  let result: BuildEmojiResult;
  let records: DatasetRecord[];
  const issues: ReadIssue[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "capflow-emoji-"));
    result = await buildEmojiDataset(dir, { size: "ci" });
    records = [];
    for await (const r of readDataset("flickr8k-csv", dir, {
      onError: "fail",
      onIssue: (i) => issues.push(i),
    }))
      records.push(r);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes three splits held out by art style and reads back through the Flickr8k reader", () => {
    expect(result.counts).toEqual({ train: 240, val: 60, test: 60, emoji: 60 });
    expect(issues).toEqual([]);
    expect(records).toHaveLength(360);
    for (const r of records) {
      const style = r.image.replace(/-[0-9a-f-]+\.png$/, "");
      const expected = ["noto", "twemoji", "openmoji", "noto-v1"].includes(style)
        ? "train"
        : style === "emojione"
          ? "val"
          : "test";
      expect(r.split, r.image).toBe(expected);
      expect(r.captions.length).toBeGreaterThanOrEqual(2);
      expect(r.captions.length).toBeLessThanOrEqual(5);
    }
  });

  it("puts no test-style (Fluent) or val-style image in train", async () => {
    const train = (await readFile(path.join(dir, "Flickr_8k.trainImages.txt"), "utf8")).trim().split("\n");
    expect(train.some((n) => n.startsWith("fluent-") || n.startsWith("emojione-"))).toBe(false);
    const test = (await readFile(path.join(dir, "Flickr_8k.testImages.txt"), "utf8")).trim().split("\n");
    expect(test.every((n) => n.startsWith("fluent-"))).toBe(true);
  });

  it("captions the dog face in every style", () => {
    const dogs = records.filter((r) => /-1f436\.png$/.test(r.image));
    expect(dogs.map((r) => r.image).sort()).toEqual(
      ["emojione", "fluent", "noto", "noto-v1", "openmoji", "twemoji"].map((s) => `${s}-1f436.png`),
    );
    for (const d of dogs) expect(d.captions).toEqual(["dog face", "a dog face", "dog", "dog face: puppy"]);
  });

  it("renders 299x299 RGB PNGs on a light-grey background", async () => {
    const meta = await sharp(path.join(dir, "Images", "twemoji-1f47b.png")).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(["png", 299, 299, 3]);
    const { data } = await sharp(path.join(dir, "Images", "twemoji-1f47b.png"))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([data[0], data[1], data[2]]).toEqual([232, 232, 232]);
  });

  it("keeps the licences with the data", async () => {
    const text = await readFile(path.join(dir, "LICENSES.md"), "utf8");
    for (const p of [
      "@iconify-json/noto@",
      "@iconify-json/twemoji@",
      "openmoji@",
      "@iconify-json/noto-v1@",
      "@iconify-json/emojione@",
      "@iconify-json/fluent-emoji-flat@",
    ]) {
      expect(text).toContain(p);
    }
    expect(text).toMatch(/CC-BY-SA-4\.0/);
  });

  it("is deterministic: a second build gives byte-identical captions and images", async () => {
    const again = await mkdtemp(path.join(os.tmpdir(), "capflow-emoji-"));
    try {
      await buildEmojiDataset(again, { size: "ci", concurrency: 1 });
      for (const f of [
        "captions.txt",
        "Flickr_8k.trainImages.txt",
        "Flickr_8k.devImages.txt",
        "Flickr_8k.testImages.txt",
      ]) {
        expect(await readFile(path.join(again, f), "utf8")).toBe(await readFile(path.join(dir, f), "utf8"));
      }
      const names = (await readdir(path.join(dir, "Images"))).sort();
      expect((await readdir(path.join(again, "Images"))).sort()).toEqual(names);
      for (const n of names.filter((_, i) => i % 20 === 0)) {
        expect(
          (await readFile(path.join(again, "Images", n))).equals(await readFile(path.join(dir, "Images", n))),
          n,
        ).toBe(true);
      }
    } finally {
      await rm(again, { recursive: true, force: true });
    }
  });
});
