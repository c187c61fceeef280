import { z } from "zod";
import { CommonEnv, envInt } from "@capflow/common";

export const TrainerEnv = CommonEnv.extend({
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(600),
  /**
   * The training job's lock. A killed trainer's run is handed to the next trainer only once its lock
   * expired, so this bounds the hand-over after a crash; it must outlast the longest stretch without
   * a yield (one batch, one chunk of evaluation).
   */
  CAPFLOW_TRAINER_LOCK_SECONDS: envInt(2).default(120),
});
export type TrainerEnv = z.infer<typeof TrainerEnv>;
