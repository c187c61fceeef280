import { z } from "zod";

/**
 * Sizes and seeds of the chaos tests, from the environment, so that one suite runs at two sizes and any
 * random run can be replayed:
 *   CAPFLOW_CHAOS_SCALE=full (default, `pnpm test:chaos`) | ci (every test once, small: `scripts/test.sh`)
 *   CAPFLOW_CHAOS_SEED=<integer>  the seed of every random choice a chaos test makes (fault schedules,
 *                                 kill delays, proxy dice); each test prints the seed it ran with and
 *                                 names it in its assertion messages
 * A size's own variable (e.g. CAPFLOW_CHAOS_IMAGES) still wins over the scale.
 */
const ChaosEnv = z.object({
  CAPFLOW_CHAOS_SCALE: z.enum(["full", "ci"]).default("full"),
  CAPFLOW_CHAOS_SEED: z.coerce.number().int().optional(),
});

const env = ChaosEnv.parse(process.env);

export const CHAOS_SCALE = env.CAPFLOW_CHAOS_SCALE;

/** A size: `CAPFLOW_<name>` when set, else the value for the current scale. */
export function chaosSize(name: string, sizes: { full: number; ci: number }): number {
  const raw = process.env[name];
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`${name}=${raw}: not a number`);
    return n;
  }
  return sizes[CHAOS_SCALE];
}

/** The run's seed: CAPFLOW_CHAOS_SEED when set, else the test's own default (so CI is repeatable). */
export function chaosSeed(fallback: number): number {
  return env.CAPFLOW_CHAOS_SEED ?? fallback;
}

/** Appended to the message of an assertion whose outcome depends on the seed. */
export const replay = (seed: number) =>
  `seed ${seed}, scale ${CHAOS_SCALE}: replay with CAPFLOW_CHAOS_SEED=${seed} CAPFLOW_CHAOS_SCALE=${CHAOS_SCALE}`;
