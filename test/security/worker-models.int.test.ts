import { afterAll, describe, expect, it } from "vitest";
import { createQueue, createRedis } from "@capflow/common";
import { loadTf } from "@capflow/ml";
import { Captioner, createCaptionWorker } from "@capflow/caption-worker";
import { freshPrefix, localStore, redisUrl } from "../support/services.ts";
import { sharedEncoder } from "../support/pipeline.ts";
import { silent } from "../support/api-server.ts";

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("security: a caption worker serves only its configured models (finding 1)", () => {
  const conn = createRedis(redisUrl(), "producer");
  const workerConn = createRedis(redisUrl(), "worker");
  afterAll(() => {
    conn.disconnect();
    workerConn.disconnect();
  });

  it("finding 1: 500 jobs naming distinct models fail at once and leave the holder count bounded", async () => {
    const prefix = freshPrefix();
    const store = await localStore();
    const { tf } = await loadTf();
    const captioner = new Captioner({
      store,
      tf,
      log: silent,
      encoder: await sharedEncoder(),
      maxBatch: 8,
      maxWaitMs: 5,
      models: ["default"],
    });
    const queue = createQueue("captions", { connection: conn, prefix });
    const worker = createCaptionWorker({
      captioner,
      store,
      connection: workerConn,
      prefix,
      log: silent,
      concurrency: 16,
      maxPixels: 50_000_000,
    });
    try {
      await queue.addBulk(
        Array.from({ length: 500 }, (_, i) => ({
          name: "image",
          data: {
            kind: "image" as const,
            requestId: `r${i}`,
            imageKey: `images/${String(i).padStart(64, "0")}.png`,
            model: `m${i}`,
          },
        })),
      );
      await until(async () => (await queue.getFailedCount()) === 500, "500 failed jobs");
      const [failed] = await queue.getFailed(0, 0);
      const attempts = (await queue.getFailed(0, 499)).map((j) => j.attemptsMade);
      console.warn(
        `finding 1 (worker): holders ${captioner.holderCount} after 500 distinct names; attempts per job ${Math.max(...attempts)}; reason "${failed!.failedReason}"`,
      );
      expect(captioner.holderCount).toBeLessThanOrEqual(1);
      expect(Math.max(...attempts)).toBe(1);
      expect(failed!.failedReason).toMatch(/not served/);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      captioner.dispose();
    }
  });
});
