import { z } from "zod";
import { CommonEnv, envInt } from "@capflow/common";

export const TrainerEnv = CommonEnv.extend({
  CAPFLOW_LIVENESS_STALE_SECONDS: envInt(10).default(600),
});
export type TrainerEnv = z.infer<typeof TrainerEnv>;
