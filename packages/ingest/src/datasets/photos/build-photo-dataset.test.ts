import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { readDataset, type DatasetRecord } from "../index.ts";
import { buildPhotoDataset, captionFromFileName, DEFAULT_PHOTO_SOURCES } from "./build-photo-dataset.ts";

async function read(dir: string): Promise<DatasetRecord[]> {
  const out: DatasetRecord[] = [];
  for await (const r of readDataset("jsonl-folder", dir, { onError: "fail", onIssue: () => undefined }))
    out.push(r);
  return out;
}

describe("buildPhotoDataset", () => {
  it("captions a photo with the words of its file name", () => {
    expect(captionFromFileName("/x/GreenMeadow.jpg")).toBe("green meadow");
    expect(captionFromFileName("Elephants_3840x2160.jpg")).toBe("elephants");
    expect(captionFromFileName("rain-drops.png")).toBe("rain drops");
  });

  it("writes a jsonl-folder test split of JPEGs at most 1024 px, skipping what is not a raster image", async () => {
    const src = await mkdtemp(path.join(os.tmpdir(), "capflow-photos-src-"));
    const out = await mkdtemp(path.join(os.tmpdir(), "capflow-photos-"));
    try {
      const noise = Buffer.alloc(1600 * 900 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      await sharp(noise, { raw: { width: 1600, height: 900, channels: 3 } })
        .jpeg()
        .toFile(path.join(src, "YellowFlower.jpg"));
      await writeFile(path.join(src, "logo.svg"), "<svg/>");
      const result = await buildPhotoDataset(out, [src]);
      expect(result.images).toBe(1);
      const records = await read(out);
      expect(records.map((r) => [r.image, r.split, r.captions])).toEqual([
        ["images/yellow-flower.jpg", "test", ["yellow flower", "a photo of yellow flower"]],
      ]);
      const meta = await sharp(path.join(out, "images", "yellow-flower.jpg")).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 1024, 576]);
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
  });

  it("says how to install the photographs when the folder is missing", async () => {
    await expect(buildPhotoDataset(os.tmpdir(), ["/nonexistent/backgrounds"])).rejects.toThrow(
      /apt-get install mate-backgrounds/,
    );
  });

  // CI installs mate-backgrounds (scripts/test.sh); elsewhere this case has nothing to read.
  it.runIf(existsSync(DEFAULT_PHOTO_SOURCES[0]!))(
    "builds from Debian's mate-backgrounds photographs",
    async () => {
      const out = await mkdtemp(path.join(os.tmpdir(), "capflow-photos-deb-"));
      try {
        const result = await buildPhotoDataset(out);
        expect(result.images).toBeGreaterThanOrEqual(10);
        expect((await read(out)).every((r) => r.split === "test")).toBe(true);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
  );
});
