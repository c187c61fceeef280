import { createWriteStream } from "node:fs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDataset } from "./index.ts";

const ROWS = 100_000;

/** A real GC, so that the heap measured is what is retained, not garbage waiting for collection. */
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Readers stream: heap does not grow with the number of rows. */
describe("streaming", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "capflow-stream-"));
    await mkdir(path.join(dir, "Images"));
    const out = createWriteStream(path.join(dir, "captions.txt"));
    out.write("image,caption\n");
    for (let i = 0; i < ROWS; i++) {
      const line = `${String(Math.floor(i / 5)).padStart(10, "0")}_synthetic.jpg,"A dog, number ${i}, runs across a ""green"" field ."\n`;
      if (!out.write(line)) await once(out, "drain");
    }
    out.end();
    await once(out, "finish");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`reads ${ROWS} quoted CSV rows with bounded heap growth`, async () => {
    let records = 0;
    let captions = 0;
    let atQuarter = 0;
    let peakRetained = 0;
    for await (const r of readDataset("flickr8k-csv", dir, {
      onError: "skip",
      onIssue: () => {},
      checkImages: false,
    })) {
      records++;
      captions += r.captions.length;
      if (records % 2500 === 0) {
        gc();
        const used = process.memoryUsage().heapUsed;
        if (records === ROWS / 20) atQuarter = used;
        if (records > ROWS / 20) peakRetained = Math.max(peakRetained, used);
      }
    }
    expect(records).toBe(ROWS / 5);
    expect(captions).toBe(ROWS);
    // Between a quarter of the file and its end, a reader that kept what it read would retain
    // 75k captions (~10 MB of strings plus arrays); a streaming one retains nothing more.
    // 4 MB is a generous margin for buffers and JIT noise.
    expect(peakRetained - atQuarter).toBeLessThan(4 * 1024 * 1024);
  });

  it("keeps streaming while checking for (here missing) image files", async () => {
    let missing = 0;
    let records = 0;
    for await (const _ of readDataset("flickr8k-csv", dir, { onError: "skip", onIssue: () => missing++ }))
      records++;
    expect(records).toBe(0);
    expect(missing).toBe(ROWS / 5);
  });
});
