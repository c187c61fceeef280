import { describe, expect, it } from "vitest";
import { DEFAULT_SCHEDULE, learningRate, LrSchedule } from "./lr-schedule.ts";

const at = (s: Parameters<typeof LrSchedule.parse>[0], x: number, valLosses?: number[]) =>
  learningRate(0.002, LrSchedule.parse(s), { at: x, epochs: 10, valLosses });

describe("learning-rate schedules", () => {
  it("cosine: warms up from a tenth over the first epoch, then falls smoothly to the floor at the end", () => {
    const s = { kind: "cosine", warmup: 1, floor: 0.02 } as const;
    expect(at(s, 0)).toBeCloseTo(0.0002);
    expect(at(s, 0.5)).toBeCloseTo(0.0011);
    expect(at(s, 1)).toBeCloseTo(0.002);
    expect(at(s, 5.5)).toBeCloseTo(0.002 * (0.02 + 0.98 * 0.5));
    expect(at(s, 10)).toBeCloseTo(0.002 * 0.02);
    let prev = Infinity;
    for (let x = 1; x <= 10; x += 0.25) {
      expect(at(s, x)).toBeLessThanOrEqual(prev);
      prev = at(s, x);
    }
  });

  it("step: × gamma every `every` epochs; constant: the base rate", () => {
    const s = { kind: "step", every: 3, gamma: 0.5 } as const;
    expect([0, 2.9, 3, 6.5, 9].map((x) => at(s, x))).toEqual([0.002, 0.002, 0.001, 0.0005, 0.00025]);
    expect(at({ kind: "constant" }, 7)).toBe(0.002);
  });

  it("plateau: drops by the factor each time the validation loss stalls for `patience` epochs", () => {
    const s = { kind: "plateau", patience: 2, factor: 0.1 } as const;
    expect(at(s, 3, [3, 2.5, 2.4])).toBe(0.002);
    expect(at(s, 5, [3, 2.5, 2.4, 2.41, 2.45])).toBeCloseTo(0.0002);
    expect(at(s, 7, [3, 2.5, 2.4, 2.41, 2.45, 2.5, 2.6])).toBeCloseTo(0.00002);
  });

  it("is a pure function of the position, so a resumed run sets the same rates", () => {
    const s = LrSchedule.parse(DEFAULT_SCHEDULE);
    const a = learningRate(0.002, s, { at: 4.37, epochs: 25 });
    const b = learningRate(0.002, s, { at: 4.37, epochs: 25 });
    expect(a).toBe(b);
  });
});
