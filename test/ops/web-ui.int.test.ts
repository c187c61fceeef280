import http from "node:http";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext } from "playwright-core";
import { createQueue, createRedis, QUEUE_NAMES, type LocalStore } from "@capflow/common";
import { buildApiServer, registerWebUi, type StatusDeps } from "@capflow/api";
import type { Captioner } from "@capflow/caption-worker";
import { writeReport } from "@capflow/trainer";
import { drawImage } from "../support/images.ts";
import { preparePublishedModel } from "../support/pipeline.ts";
import { startCaptioner, startCaptionWorkers, type CaptionWorkers } from "../support/caption-workers.ts";
import { launchChromium, requireChromium, type Chromium } from "../support/browser.ts";
import { freshPrefix, localStore, redisUrl, tempDir } from "../support/services.ts";
import { apiConfig, silent } from "../support/api-server.ts";

/**
 * The web page the API serves, in real Chromium (Debian's, through playwright-core), in front of a
 * real caption worker and a model really trained (briefly) on drawn images: upload, paste and URL
 * captions with the API key, and the pipeline page. CAPFLOW_SCREENSHOTS_DIR=docs writes the README's
 * screenshots; otherwise they go to a temp dir.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KEY = "web-test-key-0123456789";

describe("the web page", () => {
  let store: LocalStore;
  let captioner: Captioner;
  let workers: CaptionWorkers;
  let conn: ReturnType<typeof createRedis>;
  let prefix: string;
  let app: Awaited<ReturnType<typeof buildApiServer>>;
  let base = "";
  let browser: Chromium | undefined;
  let context: BrowserContext;
  let shots = "";
  let imageServer: http.Server;
  let imageUrl = "";
  let runId = "";
  let dataset = "";
  const queues = {} as StatusDeps["queues"];

  beforeAll(async () => {
    await requireChromium(); // before the model is trained, not after
    store = await localStore();
    const prepared = await preparePublishedModel(store, { images: 24, epochs: 3, runId: "drawn-demo-run" });
    runId = prepared.result.runId;
    dataset = prepared.dataset;
    await writeReport(store, runId);
    captioner = await startCaptioner(store, prepared.encoder);
    prefix = freshPrefix();
    workers = startCaptionWorkers({ captioner, store, prefix });
    conn = createRedis(redisUrl(), "producer");
    const config = apiConfig({
      apiKey: KEY,
      waitMs: 120_000,
      // The test's image server is on loopback.
      urlFetch: { maxBytes: 1024 * 1024, timeoutMs: 5_000, allowPrivate: true },
    });
    app = await buildApiServer({ store, redis: conn, prefix, log: silent, config });
    const ctx = { connection: conn, prefix };
    // Every queue of the catalog: the status page counts the workers of each.
    Object.assign(
      queues,
      Object.fromEntries(QUEUE_NAMES.map((name) => [name, createQueue(name, ctx)])) as StatusDeps["queues"],
    );
    registerWebUi(app, { store, redis: conn, queues });
    base = await app.listen({ host: "127.0.0.1", port: 0 });

    const jpeg = await drawImage(4711, "jpeg", 200);
    imageServer = http.createServer((_req, res) =>
      res.writeHead(200, { "content-type": "image/jpeg" }).end(jpeg),
    );
    await new Promise<void>((r) => imageServer.listen(0, "127.0.0.1", r));
    imageUrl = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}/dog.jpg`;

    shots = process.env.CAPFLOW_SCREENSHOTS_DIR
      ? path.resolve(ROOT, process.env.CAPFLOW_SCREENSHOTS_DIR)
      : await fs.mkdtemp(path.join(os.tmpdir(), "capflow-web-"));
    browser = await launchChromium("chromium-web", { viewport: { width: 1200, height: 800 } });
    context = browser.context;
  });

  afterAll(async () => {
    await browser?.close();
    imageServer?.close();
    await app?.close();
    await workers?.close();
    for (const name of QUEUE_NAMES) {
      await queues[name]?.obliterate({ force: true });
      await queues[name]?.close();
    }
    conn?.disconnect();
    captioner?.dispose();
  });

  it("captions an uploaded image with the API key: caption, beam alternatives with scores, model version", async () => {
    const file = path.join(await tempDir("web-upload"), "drawn-dog.png");
    await fs.writeFile(file, await drawImage(31337, "png", 200));
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/`);
    await expect(page.title()).resolves.toBe("capflow · caption an image");

    // Without the key the API refuses, and the page says what to do.
    await page.setInputFiles("#file", file);
    await page.locator("#status", { hasText: "needs a key" }).waitFor({ timeout: 60_000 });

    // The key, entered with the keyboard, is kept in this browser.
    await page.focus("#api-key");
    await page.keyboard.type(KEY);
    await page.keyboard.press("Enter");
    await page.locator("[data-key-state]", { hasText: "key stored" }).waitFor();
    await page.setInputFiles("#file", []);
    await page.setInputFiles("#file", file);
    await page.locator("#status", { hasText: "captioned drawn-dog.png" }).waitFor({ timeout: 120_000 });
    // What the API answers for the same image and decoding (the job is shared: same answer).
    const api = await fetch(`${base}/v1/captions?method=beam&beamWidth=3`, {
      method: "POST",
      headers: { "content-type": "image/png", "x-api-key": KEY },
      body: await fs.readFile(file),
    });
    const caption = ((await api.json()) as { caption: string }).caption || "(empty caption)";
    expect(await page.locator("#caption").textContent()).toBe(caption);
    const alternatives = page.locator("#alternatives tbody tr");
    expect(await alternatives.count()).toBeGreaterThanOrEqual(1);
    expect(await alternatives.count()).toBeLessThanOrEqual(3);
    // The first alternative is the caption; scores are numbers, best first.
    expect(await alternatives.first().locator("td").nth(1).textContent()).toBe(caption);
    const scores = (await page.locator("#alternatives tbody tr td:nth-child(3)").allTextContents()).map(
      Number,
    );
    expect(scores.every(Number.isFinite)).toBe(true);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    await expect(page.locator("#facts").textContent()).resolves.toContain(`default@${runId}/epoch-`);
    expect(
      await page
        .locator("#preview")
        .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
    ).toBe(200);
    expect(errors).toEqual([]);
    await page.screenshot({ path: path.join(shots, "web-caption.png"), fullPage: true });

    await page.close();
  });

  it("captions a pasted image and a URL typed and submitted with the keyboard", async () => {
    const page = await context.newPage();
    await page.goto(`${base}/`);
    const png = (await drawImage(99, "png", 120)).toString("base64");
    // A paste event carrying an image file, as the browser builds one for Ctrl+V (page-side code
    // as a string: the test's TypeScript has no DOM types).
    await page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob(${JSON.stringify(png)}), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "clipboard.png", { type: "image/png" }));
      document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }));
    })()`);
    await page.locator("#status", { hasText: "captioned clipboard.png" }).waitFor({ timeout: 120_000 });

    await page.focus("#url");
    await page.keyboard.type(imageUrl);
    await page.keyboard.press("Enter");
    await page.locator("#status", { hasText: `captioned ${imageUrl}` }).waitFor({ timeout: 120_000 });
    expect((await page.locator("#caption").textContent())!.length).toBeGreaterThan(0);

    // Every control can be reached with Tab and has a name.
    const names: string[] = [];
    await page.focus("body");
    for (let i = 0; i < 16; i++) {
      await page.keyboard.press("Tab");
      names.push(
        await page.evaluate<string>(
          "document.activeElement?.id || document.activeElement?.textContent?.trim() || ''",
        ),
      );
    }
    for (const id of ["api-key", "file", "url", "method", "beam-width", "model"]) expect(names).toContain(id);
    await page.close();
  });

  it("shows confidence and the out-of-domain flag when the API returns them", async () => {
    // These fields come from another branch's worker; the page must render them once they exist. The
    // answer is the real one from this API, with the two fields added on its way to the page.
    const file = path.join(await tempDir("web-ood"), "ood.png");
    await fs.writeFile(file, await drawImage(4242, "png", 150));
    // The real answer, asked by the test (Playwright's route.fetch dropped the multipart body).
    const real = await fetch(`${base}/v1/captions?method=beam&beamWidth=3`, {
      method: "POST",
      headers: { "content-type": "image/png", "x-api-key": KEY },
      body: await fs.readFile(file),
    });
    const answer = (await real.json()) as Record<string, unknown>;
    expect(answer.status).toBe("done");
    const page = await context.newPage();
    await page.route(
      (url) => url.pathname === "/v1/captions",
      (route) => route.fulfill({ status: 200, json: { ...answer, confidence: 0.12, outOfDomain: true } }),
    );
    await page.goto(`${base}/`);
    await page.setInputFiles("#file", file);
    await page.locator("#status", { hasText: /captioned|could not/ }).waitFor({ timeout: 120_000 });
    await expect(page.locator("#status").textContent()).resolves.toBe("captioned ood.png");
    await expect(page.locator("#flags").textContent()).resolves.toContain("out of domain");
    await expect(page.locator("#flags").textContent()).resolves.toContain("confidence 12%");
    await page.close();
  });

  it("lists datasets, runs (with their report) and bulk jobs with progress, and links bull-board and metrics", async () => {
    const submit = await fetch(`${base}/v1/caption-jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEY },
      body: JSON.stringify({ dataset }),
    });
    expect(submit.status).toBe(202);
    const { id } = (await submit.json()) as { id: string };

    const page = await context.newPage();
    await page.goto(`${base}/pipeline`);
    const row = page.locator("#datasets tbody tr", { hasText: dataset });
    await row.waitFor({ timeout: 30_000 });
    await expect(row.textContent()).resolves.toContain("3/3");
    const run = page.locator("#runs tbody tr", { hasText: runId });
    await expect(run.textContent()).resolves.toMatch(/3\/3 \(finished\)/);
    await expect(run.textContent()).resolves.toContain("default");
    await page
      .locator("#batches tbody tr", { hasText: id })
      .locator("text=done")
      .waitFor({ timeout: 120_000 });
    await expect(page.locator("#batches tbody tr", { hasText: id }).textContent()).resolves.toContain(
      "24/24",
    );
    for (const href of ["/admin/queues", "/metrics", "/"])
      expect(await page.locator(`nav a[href="${href}"]`).count()).toBe(1);
    await page.screenshot({ path: path.join(shots, "web-pipeline.png"), fullPage: true });

    // The report opens (fetched with the key) in a new tab.
    const [popup] = await Promise.all([
      context.waitForEvent("page"),
      run.getByRole("link", { name: "HTML report" }).click(),
    ]);
    await popup.waitForLoadState();
    await expect(popup.title()).resolves.toBe(`capflow run ${runId}`);
    await popup.close();
    await page.close();

    const noKey = await fetch(`${base}/v1/status`);
    expect(noKey.status).toBe(401);
  });
});
