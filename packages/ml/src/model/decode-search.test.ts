import { describe, expect, it } from "vitest";
import {
  beamSearch,
  bestOfRows,
  greedySearch,
  runAsync,
  runSync,
  type SearchConfig,
  type StepRequest,
} from "./decode-search.ts";

const cfg: SearchConfig = { vocabSize: 4, startId: 1, endId: 2, maxLength: 6 };

describe("decode search", () => {
  it("greedy drops rows that emitted <end> from the state, naming the rows that go on", () => {
    const requests: StepRequest[] = [];
    // Row 0 ends at its second step, row 1 at its third, row 2 never (runs out of room).
    const ends = [1, 2, Infinity];
    let live = [0, 1, 2];
    let t = 0;
    const out = runSync(greedySearch(3, cfg), (req) => {
      requests.push(req);
      if (req.parents) live = req.parents.map((p) => live[p]!);
      const best = live.map((row) => (t >= ends[row]! ? 2 : 3));
      t++;
      return { best, logProb: best.map(() => -0.5) };
    });
    expect(out.tokens).toEqual([[3], [3, 3], [3, 3, 3, 3, 3]]);
    expect(out.logProbs).toEqual([-1, -1.5, -2.5]);
    expect(requests.map((r) => r.parents)).toEqual([undefined, undefined, [1, 2], [1], undefined]);
    expect(requests.map((r) => Array.from(r.tokens))).toEqual([[1, 1, 1], [3, 3, 3], [3, 3], [3], [3]]);
  });

  it("takes the first of tied maxima, as ONNX ArgMax does", () => {
    const { best, logProb } = bestOfRows(Float32Array.of(-1, -0.5, -0.5, -3, -2, -2, -2, -2), 4);
    expect(Array.from(best)).toEqual([1, 0]);
    expect(Array.from(logProb)).toEqual([-0.5, -2]);
  });

  it("gives the same beams driven synchronously and asynchronously", async () => {
    // A fixed next-word distribution that depends on the last token only.
    const table: Record<number, number[]> = {
      1: [-9, -9, -2, -0.1],
      3: [-9, -9, -0.7, -0.8],
    };
    const step = (req: StepRequest) => Float32Array.from(Array.from(req.tokens).flatMap((t) => table[t]!));
    const sync = runSync(beamSearch(cfg, { width: 2, lengthPenalty: 0.5 }), step);
    const async = await runAsync(beamSearch(cfg, { width: 2, lengthPenalty: 0.5 }), async (r) => step(r));
    expect(async).toEqual(sync);
    expect(sync.length).toBe(2);
    expect(sync[0]!.score).toBeGreaterThanOrEqual(sync[1]!.score);
    expect(sync[0]!.tokens).toEqual([3]);
  });
});
