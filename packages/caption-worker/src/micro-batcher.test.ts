import { describe, expect, it } from "vitest";
import { MicroBatcher } from "./micro-batcher.ts";

describe("MicroBatcher", () => {
  it("runs items submitted together as one batch, in order", async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>({
      maxBatch: 8,
      maxWaitMs: 20,
      run: (xs) => xs.map((x) => x * 2),
      onBatch: (n) => sizes.push(n),
    });
    const out = await Promise.all([1, 2, 3].map((x) => b.submit(x)));
    expect(out).toEqual([2, 4, 6]);
    expect(sizes).toEqual([3]);
  });

  it("cuts at maxBatch without waiting", async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>({
      maxBatch: 2,
      maxWaitMs: 60_000,
      run: (xs) => xs,
      onBatch: (n) => sizes.push(n),
    });
    const out = await Promise.all([1, 2, 3, 4].map((x) => b.submit(x)));
    expect(out).toEqual([1, 2, 3, 4]);
    expect(sizes).toEqual([2, 2]);
  });

  it("rejects every item of a failing batch and keeps serving", async () => {
    let fail = true;
    const b = new MicroBatcher<number, number>({
      maxBatch: 4,
      maxWaitMs: 5,
      run: (xs) => {
        if (fail) throw new Error("boom");
        return xs;
      },
    });
    const results = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    await expect(b.submit(3)).resolves.toBe(3);
  });
});
