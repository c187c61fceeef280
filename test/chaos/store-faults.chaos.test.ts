import { createHash, randomUUID } from "node:crypto";
import { describe, expect, it, inject } from "vitest";
import { S3Store } from "@capflow/common";
import { TcpProxy } from "../support/fault/tcp-proxy.ts";
import { rng } from "../support/fault/bad-images.ts";

// docs/reliability.md test 11: the S3 store through a TCP proxy in front of s3rver that drops, resets
// (mid-transfer) and stalls a share of connections, and per request answers 503, resets or stalls
// (the SDK keeps one connection alive for everything). Every write must land whole, every read must
// return the bytes written, no operation may hang.
const OPS = Number(process.env.CAPFLOW_STORE_FAULT_OPS ?? 200);
// Longer than the store's 30 s idle-socket timeout times a few retries.
const HANG_MS = 150_000;

const body = (i: number) => {
  const random = rng(i);
  return Buffer.from(Array.from({ length: 64 * 1024 + (i % 7) * 1000 }, () => Math.floor(random() * 256)));
};
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function withHangGuard<T>(op: Promise<T>): Promise<T | "hang"> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<"hang">((r) => (timer = setTimeout(() => r("hang"), HANG_MS)));
  try {
    return await Promise.race([op, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe("object-store faults", () => {
  it("retries through drops, resets and stalls: no partial object, nothing lost, no hang", async () => {
    const target = Number(new URL(inject("s3Endpoint")).port);
    const proxy = await new TcpProxy(target, "127.0.0.1", rng(11)).start();
    proxy.faults = {
      dropRate: 0.1,
      resetRate: 0.15,
      resetAfterMs: 3,
      stallRate: 0.05,
      http: { status503Rate: 0.1, resetRate: 0.1, stallRate: 0.03 },
    };
    const store = new S3Store({
      bucket: inject("s3Bucket"),
      endpoint: `http://127.0.0.1:${proxy.port}`,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      prefix: `t-${randomUUID()}`,
    });
    const outcome = { ok: 0, errors: [] as string[], hangs: 0 };
    try {
      for (let i = 0; i < OPS; i++) {
        const r = await withHangGuard(store.put(`obj/${i}`, body(i)).then(() => "ok" as const)).catch(
          (e: Error) => `${e.name}: ${e.message}`,
        );
        if (r === "ok") outcome.ok++;
        else if (r === "hang") outcome.hangs++;
        else outcome.errors.push(r);
      }
      proxy.faults = {};
      // At rest: every object acknowledged is whole; none is partial.
      let whole = 0;
      let partial = 0;
      for (let i = 0; i < OPS; i++) {
        const head = await store.head(`obj/${i}`);
        if (!head) continue;
        if (sha(await store.get(`obj/${i}`)) === sha(body(i))) whole++;
        else partial++;
      }
      console.info(
        JSON.stringify({
          ops: OPS,
          ...outcome,
          errors: outcome.errors.length,
          whole,
          partial,
          proxy: proxy.counts,
        }),
      );
      expect(partial).toBe(0);
      expect(outcome.hangs).toBe(0);
      // Drops and resets are retried by the SDK (5 attempts): at most a handful may exhaust them.
      expect(outcome.ok).toBeGreaterThanOrEqual(OPS * 0.98);
      expect(whole).toBeGreaterThanOrEqual(outcome.ok);
    } finally {
      await store.close();
      await proxy.stop();
    }
  });
});
