import type { Redis } from "ioredis";
import { freePort, waitReady } from "@capflow/common";

/** A loopback port nothing listens on (taken and released at once). */
export const freePortOnLoopback = () => freePort("127.0.0.1");

/** Redis `used_memory` in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  await waitReady(redis);
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

/** Peak VmRSS (bytes) of a process while `run` runs, sampled every 20 ms from /proc. */
export async function peakRss<T>(pid: number, run: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const { readFile } = await import("node:fs/promises");
  const rss = async () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
  let peak = await rss();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, await rss().catch(() => 0));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const result = await run();
    return { result, peak };
  } finally {
    done = true;
    await sampler;
  }
}
