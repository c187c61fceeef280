import { describe, expect, it } from "vitest";
import {
  beamSearch,
  bestOfRows,
  greedySearch,
  runAsync,
  runSync,
  scoreSearch,
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
    const cfg5: SearchConfig = { ...cfg, vocabSize: 5 };
    const out = runSync(greedySearch(3, cfg5), (req) => {
      requests.push(req);
      if (req.parents) live = req.parents.map((p) => live[p]!);
      // Words alternate (3, 4, 3, ...) so that no rule changes the model's choice.
      const best = live.map((row) => (t >= ends[row]! ? 2 : t % 2 === 0 ? 3 : 4));
      t++;
      return { best, logProb: best.map(() => -0.5) };
    });
    expect(out.tokens).toEqual([[3], [3, 4], [3, 4, 3, 4, 3]]);
    expect(out.logProbs).toEqual([-1, -1.5, -2.5]);
    expect(requests.map((r) => r.parents)).toEqual([undefined, undefined, [1, 2], [1], undefined]);
    expect(requests.map((r) => Array.from(r.tokens))).toEqual([[1, 1, 1], [3, 3, 3], [4, 4], [3], [4]]);
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

  it("never lets <end> come first, nor a token three times in a row (greedy)", () => {
    // A model that always prefers <end>, then token 3: unguarded, it would answer "" or "3 3 3 3 3".
    const full: boolean[] = [];
    const out = runSync(greedySearch(1, cfg), (req) => {
      full.push(req.full === true);
      const logp = Float32Array.of(-9, -9, -0.1, -1, -2);
      const rows = req.tokens.length;
      const all = new Float32Array(rows * 5);
      for (let r = 0; r < rows; r++) all.set(logp, r * 5);
      const best = Array.from({ length: rows }, () => 2);
      return { best, logProb: best.map(() => -0.1), logProbs: req.full ? all : undefined };
    });
    expect(out.tokens[0]!.length).toBeGreaterThan(0);
    expect(out.tokens).toEqual([[3]]);
    // Only the first step needed the full distribution (a rule could bite there).
    expect(full).toEqual([true, false]);

    const vocab5: SearchConfig = { vocabSize: 5, startId: 1, endId: 2, maxLength: 8 };
    const repeat = runSync(greedySearch(1, vocab5), (req) => {
      const logp = Float32Array.of(-9, -9, -5, -0.1, -1); // 3 is always best, <end> unlikely
      return { best: [3], logProb: [-0.1], logProbs: req.full ? logp : undefined };
    });
    const t = repeat.tokens[0]!;
    for (let i = 2; i < t.length; i++) expect(t[i] === t[i - 1] && t[i] === t[i - 2]).toBe(false);
    expect(t.slice(0, 3)).toEqual([3, 3, 4]);
  });

  it("never lets <end> come first, nor a token three times in a row (beam)", () => {
    const vocab5: SearchConfig = { vocabSize: 5, startId: 1, endId: 2, maxLength: 8 };
    const step = (req: StepRequest) => {
      const rows = req.tokens.length;
      const all = new Float32Array(rows * 5);
      for (let r = 0; r < rows; r++) all.set([-9, -9, -0.05, -0.5, -3], r * 5);
      return all;
    };
    const beams = runSync(beamSearch(vocab5, { width: 3, lengthPenalty: 1 }), step);
    for (const b of beams) {
      expect(b.tokens.length).toBeGreaterThan(0);
      for (let i = 2; i < b.tokens.length; i++)
        expect(b.tokens[i] === b.tokens[i - 1] && b.tokens[i] === b.tokens[i - 2]).toBe(false);
    }
  });

  it("scores fixed sequences: the log-probability of each word and <end>, rows leaving as they end", () => {
    const table: Record<number, number[]> = {
      1: [-9, -9, -2, -0.1],
      3: [-9, -9, -0.7, -0.8],
    };
    const parents: Array<readonly number[] | undefined> = [];
    const out = runSync(scoreSearch([[3], [3, 3], []], cfg), (req) => {
      parents.push(req.parents);
      return Float32Array.from(Array.from(req.tokens).flatMap((t) => table[t]!));
    });
    expect(out.lengths).toEqual([2, 3, 1]);
    expect(out.logProbs[0]).toBeCloseTo(-0.1 - 0.7);
    expect(out.logProbs[1]).toBeCloseTo(-0.1 - 0.8 - 0.7);
    expect(out.logProbs[2]).toBeCloseTo(-2);
    expect(parents).toEqual([undefined, [0, 1], [1]]);
  });
});
