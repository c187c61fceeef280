import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext } from "playwright-core";
import type { Queue } from "bullmq";
import { createQueue, DEFAULT_DECODE, QUEUE_NAMES } from "@capflow/common";
import { renderReport, type EpochMetrics, type RunResult } from "@capflow/trainer";
import { startAdminServer } from "@capflow/api";
import { drawImage } from "../support/images.ts";
import { launchChromium, type Chromium } from "../support/browser.ts";
import { freshPrefix, producer } from "../support/services.ts";

/**
 * Real Chromium (Debian's, through playwright-core) opens a run report rendered from a realistic
 * RunResult with real drawn images, and the bull-board page served by the admin plugin. Screenshots
 * are kept under a temp dir whose path is printed.
 */

function withIntervals([bleu1, bleu2, bleu3, bleu4, cider]: number[]) {
  const iv = (value = 0) => ({ value, low: value * 0.9, high: value * 1.1 });
  return {
    bleu1: iv(bleu1),
    bleu2: iv(bleu2),
    bleu3: iv(bleu3),
    bleu4: iv(bleu4),
    cider: iv(cider),
    exact: iv(0.2),
    empty: 0,
    repeats: 0,
    images: 12,
  };
}

function syntheticRun(samples: Array<{ key: string; file: string }>): RunResult {
  const history: EpochMetrics[] = Array.from({ length: 8 }, (_, i) => {
    const e = i + 1;
    return {
      epoch: e,
      trainLoss: 4.8 * Math.exp(-0.25 * e) + 1.2,
      valLoss: 4.9 * Math.exp(-0.2 * e) + 1.6 + (e > 6 ? 0.05 * (e - 6) : 0),
      bleu1: 0.31 + 0.03 * Math.log(e),
      bleu2: 0.17 + 0.02 * Math.log(e),
      bleu3: 0.09 + 0.015 * Math.log(e),
      bleu4: 0.05 + 0.01 * Math.log(e),
      cider: 0.12 + 0.06 * Math.log(e) - (e > 6 ? 0.01 * (e - 6) : 0),
      seconds: 455 + 10 * Math.sin(e),
      captionsPerSecond: 87 + Math.cos(e),
    };
  });
  return {
    runId: "flickr8k-2026-11-28",
    epochs: 8,
    resumedFrom: 3,
    best: { epoch: 6, cider: history[5]!.cider },
    history,
    published: "models/default/latest",
    test: {
      images: samples.length,
      decode: DEFAULT_DECODE,
      scores: {
        model: withIntervals([0.401, 0.229, 0.131, 0.074, 0.2587]),
        greedy: withIntervals([0.382, 0.211, 0.118, 0.067, 0.2311]),
        rerank: withIntervals([0.39, 0.22, 0.12, 0.07, 0.24]),
        baseline: withIntervals([0.352, 0.183, 0.097, 0.051, 0.1894]),
      },
      calibration: { a: -3, b: 5, oodThreshold: 0.4, rule: "2nd percentile of validation similarity" },
      outOfDomain: { val: 0.02, test: 0.04 },
      samples: samples.map((s, i) => ({
        ...s,
        model: `a brown dog is running on the grass ${i}`,
        greedy: `a dog runs through the grass ${i}`,
        rerank: "a dog on a lawn",
        baseline: "two children play in the snow",
        confidence: 0.6,
        outOfDomain: false,
        references: [`a dog running on a lawn <${i}>`, "the brown dog runs & jumps", "a puppy plays outside"],
      })),
    },
  };
}

describe("in a real browser", () => {
  let shots = "";
  let browser: Chromium | undefined;
  let context: BrowserContext;

  beforeAll(async () => {
    browser = await launchChromium("chromium-profile");
    context = browser.context;
    shots = await fs.mkdtemp(path.join(os.tmpdir(), "capflow-screenshots-"));
    console.warn(`[browser] screenshots in ${shots}`);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("shows a run report: curves, scores against the baseline, every test image with its captions", async () => {
    const images = new Map<string, Buffer>();
    const samples: Array<{ key: string; file: string }> = [];
    for (let i = 0; i < 6; i++) {
      const bytes = await drawImage(i, i % 2 ? "jpeg" : "png", 160);
      const key = `images/${createHash("sha256").update(bytes).digest("hex")}.${i % 2 ? "jpg" : "png"}`;
      images.set(key, bytes);
      samples.push({ key, file: `test/${1000 + i}_dog.${i % 2 ? "jpg" : "png"}` });
    }
    const result = syntheticRun(samples);
    const html = renderReport(
      result,
      {
        spec: { runId: result.runId, epochs: 8 },
        model: { units: 256, note: "</pre><script>alert(1)</script>" },
      },
      images,
    );
    const file = path.join(shots, "report.html");
    await fs.writeFile(file, html);

    const page = await context.newPage();
    const requests: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) requests.push(r.url());
    });
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`file://${file}`);
    await expect(page.title()).resolves.toBe("capflow run flickr8k-2026-11-28");

    const cell = (decoder: string, metric: string) =>
      page.locator(`#scores tr[data-decoder="${decoder}"] td[data-metric="${metric}"]`).textContent();
    // Each score is printed with its 95% interval (here ±10%).
    await expect(cell("model", "cider")).resolves.toBe("0.2587 [0.2328, 0.2846]");
    await expect(cell("baseline", "bleu4")).resolves.toBe("0.0510 [0.0459, 0.0561]");
    // Bold where the whole interval lies above the baseline's: the model on BLEU-2..4 and CIDEr-D,
    // greedy on BLEU-4, re-rank on BLEU-3, BLEU-4 and CIDEr-D.
    expect(await page.locator("#scores td.beats").count()).toBe(8);
    expect(await page.locator("#epochs tr.best td").first().textContent()).toBe("6");

    expect(await page.locator("#curves svg").count()).toBe(2);
    expect(await page.locator('#curves svg g.series[data-name="val"] circle').count()).toBe(8);

    const imgs = page.locator("#samples img");
    expect(await imgs.count()).toBe(6);
    const decoded = await imgs.evaluateAll((els) =>
      els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth),
    );
    expect(decoded).toEqual(Array(6).fill(160));
    await expect(
      page.locator("#samples .sample").first().locator(".refs li").first().textContent(),
    ).resolves.toBe("a dog running on a lawn <0>");
    await expect(page.locator("#config").textContent()).resolves.toContain("</pre><script>alert(1)</script>");
    expect(dialogs).toEqual([]);
    expect(requests).toEqual([]);
    await page.screenshot({ path: path.join(shots, "report.png"), fullPage: true });
    await page.close();
  });

  describe("bull-board", () => {
    let server: Awaited<ReturnType<typeof startAdminServer>> | undefined;
    const queues: Queue[] = [];
    const redis = producer();

    beforeAll(async () => {
      const prefix = freshPrefix();
      for (const name of QUEUE_NAMES) queues.push(createQueue(name, { connection: redis, prefix }));
      await queues[0]!.add("shard", {
        dataset: "drawn",
        shardId: "s0000",
        shardKey: "datasets/drawn/shards/s0000.json",
      });
      server = await startAdminServer({ queues, redis, prefix });
    });

    afterAll(async () => {
      await server?.app.close();
      for (const q of queues) {
        await q.obliterate({ force: true });
        await q.close();
      }
      redis.disconnect();
    });

    it("serves the queue board at /admin/queues, read-only without an admin key", async () => {
      const base = server!.url;
      const page = await context.newPage();
      await page.goto(`${base}/admin/queues`);
      for (const name of QUEUE_NAMES) {
        await expect(
          page.getByText(name, { exact: true }).first().waitFor({ timeout: 30_000 }),
        ).resolves.toBeUndefined();
      }
      await page.screenshot({ path: path.join(shots, "bull-board.png"), fullPage: true });
      await page.close();

      const pause = await fetch(`${base}/admin/api/queues/features/pause`, {
        method: "POST",
      });
      expect(pause.status).toBe(403);
      const stats = (await (await fetch(`${base}/admin/api/queues`)).json()) as Array<{
        queue: string;
        counts: { waiting: number };
      }>;
      expect(stats.map((s) => s.queue)).toEqual(QUEUE_NAMES);
      expect(stats[0]!.counts.waiting).toBe(1);
    });
  });
});
