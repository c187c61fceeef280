import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readDataset, type DatasetRecord, type ReadIssue } from "@capflow/ingest";
import { drawImage } from "../support/images.ts";
import { tempDir } from "../support/services.ts";

async function read(dir: string, format: "coco" | "jsonl-folder") {
  const records: DatasetRecord[] = [];
  const issues: ReadIssue[] = [];
  for await (const r of readDataset(format, dir, { onError: "skip", onIssue: (i) => issues.push(i) }))
    records.push(r);
  return { records, issues };
}

describe("security: dataset readers stay inside the dataset folder (finding 9)", () => {
  it("finding 9: a COCO file named captions_...json (subset ..) reads nothing from the parent folder", async () => {
    const root = await tempDir("coco-root");
    const dir = path.join(root, "dataset");
    await fs.mkdir(path.join(dir, "annotations"), { recursive: true });
    await fs.writeFile(path.join(root, "secret.jpg"), await drawImage(1, "jpeg"));
    await fs.writeFile(path.join(dir, "inside.jpg"), await drawImage(2, "jpeg"));
    const doc = {
      images: [{ id: 1, file_name: "secret.jpg" }],
      annotations: [{ image_id: 1, caption: "a secret" }],
    };
    await fs.writeFile(path.join(dir, "annotations", "captions_...json"), JSON.stringify(doc));
    const { records, issues } = await read(dir, "coco");
    console.warn(
      `finding 9 (subset): records ${JSON.stringify(records.map((r) => r.image))}, issues ${issues.length}`,
    );
    expect(records.filter((r) => r.image.includes(".."))).toEqual([]);
    expect(records).toEqual([]);
    expect(issues.some((i) => /subset name/.test(i.message))).toBe(true);
  });

  it("finding 9: a symlink in the images folder that leads outside it is refused", async () => {
    const dir = await tempDir("links");
    await fs.mkdir(path.join(dir, "img"));
    await fs.writeFile(path.join(dir, "img", "real.png"), await drawImage(3));
    await fs.symlink("/etc/hostname", path.join(dir, "img", "link.jpg"));
    await fs.writeFile(
      path.join(dir, "captions.jsonl"),
      [
        JSON.stringify({ image: "img/real.png", captions: ["a real image"] }),
        JSON.stringify({ image: "img/link.jpg", captions: ["a link"] }),
      ].join("\n") + "\n",
    );
    const { records, issues } = await read(dir, "jsonl-folder");
    console.warn(`finding 9 (symlink): records ${JSON.stringify(records.map((r) => r.image))}`);
    expect(records.map((r) => r.image)).toEqual(["img/real.png"]);
    expect(issues.find((i) => i.kind === "missing-image")?.message).toMatch(/link\.jpg/);
  });
});
