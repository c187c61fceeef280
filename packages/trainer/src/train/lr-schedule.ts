/**
 * Learning-rate schedules, as pure functions of where training is (a fractional epoch) and the
 * validation losses seen so far, so that a run resumed from a checkpoint sets the same rate at the same
 * batch as an uninterrupted one.
 *
 * Why a schedule at all: at a constant 2e-3, 209–234 of the demo's 300 validation captions changed
 * between consecutive late epochs and validation CIDEr-D swung by ±0.2, so "the best epoch" picked noise
 * (issue 13). The default and its figures are in `DEFAULT_SCHEDULE` below.
 */
import { z } from "zod";

export const LrSchedule = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("constant") }),
  /** × `gamma` every `every` epochs. */
  z.object({
    kind: z.literal("step"),
    every: z.number().positive().default(8),
    gamma: z.number().positive().max(1).default(0.3),
  }),
  /** Linear warm-up from lr/10 over `warmup` epochs, then a half cosine down to lr × `floor` at the end. */
  z.object({
    kind: z.literal("cosine"),
    warmup: z.number().min(0).default(1),
    floor: z.number().min(0).max(1).default(0.02),
  }),
  /** × `factor` each time the validation loss has not improved for `patience` epochs. */
  z.object({
    kind: z.literal("plateau"),
    patience: z.number().int().min(1).default(2),
    factor: z.number().positive().max(1).default(0.3),
  }),
]);
export type LrSchedule = z.output<typeof LrSchedule>;
export type LrScheduleInput = z.input<typeof LrSchedule>;

/**
 * Cosine with a one-epoch warm-up. Measured on the demo's features (docs/quality.md, "Learning-rate
 * schedule"): see the table there for val CIDEr-D / val loss of each schedule; cosine gave the lowest
 * validation loss and the steadiest late epochs, and needs no tuning of when to drop.
 */
export const DEFAULT_SCHEDULE: LrScheduleInput = { kind: "cosine", warmup: 1, floor: 0.02 };

export interface LrPosition {
  /** Epochs done so far, fractional: epoch index (0-based) + batch / batches. */
  at: number;
  epochs: number;
  /** Validation losses of the finished epochs, oldest first (plateau only). */
  valLosses?: readonly number[];
}

export function learningRate(base: number, schedule: LrSchedule, pos: LrPosition): number {
  switch (schedule.kind) {
    case "constant":
      return base;
    case "step":
      return base * Math.pow(schedule.gamma, Math.floor(pos.at / schedule.every));
    case "cosine": {
      const { warmup, floor } = schedule;
      if (pos.at < warmup) return base * (0.1 + (0.9 * pos.at) / warmup);
      const span = Math.max(1e-9, pos.epochs - warmup);
      const progress = Math.min(1, (pos.at - warmup) / span);
      return base * (floor + ((1 - floor) * (1 + Math.cos(Math.PI * progress))) / 2);
    }
    case "plateau": {
      let drops = 0;
      let best = Infinity;
      let since = 0;
      for (const loss of pos.valLosses ?? []) {
        if (loss < best - 1e-4) {
          best = loss;
          since = 0;
        } else if (++since >= schedule.patience) {
          drops++;
          since = 0;
        }
      }
      return base * Math.pow(schedule.factor, drops);
    }
  }
}
