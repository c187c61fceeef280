import http from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "@capflow/common";
import { CapflowProcess } from "../support/fault/process-control.ts";
import { redisUrl, freshPrefix, tempDir } from "../support/services.ts";
import { drawImage } from "../support/images.ts";
import { peakRss } from "./support.ts";

const MB = 1024 * 1024;
/** Upper bound on the API's RSS while 40 × 19 MB uploads arrive at once (issue: 1,068 MB before). */
const RSS_BOUND = 600 * MB;

/** POSTs `body` and resolves with the status, or "error: ..." when the server hung up mid-body. */
function post(port: number, body: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/captions",
        headers: { "content-type": "image/png" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", (err) => resolve(`error: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    req.end(body);
  });
}

describe("security: image bodies are capped before they are read (finding 3)", () => {
  let api: CapflowProcess | undefined;
  afterAll(async () => {
    await api?.terminate();
  });

  it("finding 3: 40 concurrent 19 MB uploads keep the API's RSS under 600 MB", async () => {
    const port = await freePort();
    api = new CapflowProcess(["api"], {
      CAPFLOW_REDIS_URL: redisUrl(),
      CAPFLOW_QUEUE_PREFIX: freshPrefix(),
      CAPFLOW_STORE_DIR: await tempDir("upload-store"),
      CAPFLOW_API_PORT: String(port),
      CAPFLOW_API_WAIT_MS: "0",
      CAPFLOW_LOG_LEVEL: "info",
    }).start();
    await api.waitFor("api listening");
    // A real PNG followed by padding up to 19 MB: it passes the signature check and is stored.
    const png = await drawImage(9);
    const body = Buffer.concat([png, Buffer.alloc(19 * MB - png.length)]);
    const idle = await peakRss(api.pid, async () => new Promise((r) => setTimeout(r, 200)));
    const { result: outcomes, peak } = await peakRss(api.pid, () =>
      Promise.all(Array.from({ length: 40 }, () => post(port, body))),
    );
    const count = (s: number | string) => outcomes.filter((o) => o === s).length;
    console.warn(
      `finding 3: RSS idle ${(idle.peak / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB; ` +
        `${count(202)} x 202, ${count(429)} x 429, others ${JSON.stringify(outcomes.filter((o) => o !== 202 && o !== 429))}`,
    );
    expect(count(202)).toBeGreaterThan(0);
    expect(count(429)).toBeGreaterThan(0);
    expect(peak).toBeLessThan(RSS_BOUND);
  });
});
