import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALPHA_BACKGROUND, preprocessImage } from "@capflow/ml";
import { readDataset, type DatasetRecord, type ReadIssue } from "../index.ts";
import { buildEmojiDataset, type BuildEmojiResult } from "./build-emoji-dataset.ts";
import { emojiCaptions } from "./captions.ts";
import { renderPng } from "./render.ts";
import { loadCaptionSources, loadStyles } from "./sources.ts";

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

  it("renders 299x299 transparent PNGs that decode onto the same background as uploads", async () => {
    const file = path.join(dir, "Images", "twemoji-1f47b.png");
    const meta = await sharp(file).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(["png", 299, 299, 4]);
    const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    expect(data[3]).toBe(0); // the corner is transparent: no background is baked in
    const p = await preprocessImage(await readFile(file));
    if (!p.ok) throw new Error(p.message);
    const corner = [0, 1, 2].map((c) => Math.round((p.pixels[c]! + 1) * 127.5));
    expect(corner).toEqual([ALPHA_BACKGROUND.r, ALPHA_BACKGROUND.g, ALPHA_BACKGROUND.b]);
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

describe("buildEmojiDataset --test-render 64 (ci)", () => {
  it("draws only the test style at 64 px, enlarged to 299, every image in the test split", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "capflow-emoji-render-"));
    try {
      const result = await buildEmojiDataset(dir, { size: "ci", testRender: 64 });
      expect(result.counts).toEqual({ train: 0, val: 0, test: 60, emoji: 60 });
      const records: DatasetRecord[] = [];
      for await (const r of readDataset("flickr8k-csv", dir, { onError: "fail", onIssue: () => undefined }))
        records.push(r);
      expect(records).toHaveLength(60);
      expect(records.every((r) => r.split === "test" && r.image.startsWith("fluent-"))).toBe(true);
      const dog = records.find((r) => r.image === "fluent-1f436.png")!;
      expect(dog.captions).toEqual(["dog face", "a dog face", "dog", "dog face: puppy"]);

      // Enlarged from 64 px: much less fine detail than the same art drawn at 299 px.
      const src = loadCaptionSources();
      const fluent = loadStyles(src.emoji).find((st) => st.id === "fluent")!;
      const drawnFull = await renderPng((size) => fluent.svg("1f436", size)!);
      const detail = async (png: Buffer) => {
        const { data } = await sharp(png).flatten({ background: "#e8e8e8" }).greyscale().raw().toBuffer({
          resolveWithObject: true,
        });
        let sum = 0;
        for (let i = 1; i < data.length; i++) sum += (data[i]! - data[i - 1]!) ** 2;
        return sum;
      };
      // Gradient energy: edges enlarged from 64 px are spread over ~5 pixels, so it falls.
      const small = await detail(await readFile(path.join(dir, "Images", "fluent-1f436.png")));
      expect(small).toBeLessThan((await detail(drawnFull)) * 0.5);
      const info = JSON.parse(await readFile(path.join(dir, "emoji-dataset.json"), "utf8")) as {
        testRender?: number;
      };
      expect(info.testRender).toBe(64);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
