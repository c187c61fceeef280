import { z } from "zod";

/**
 * The admin variable, for the lead to merge into ApiEnv (`ApiEnv.extend(AdminEnv.shape)`).
 * For .env.example:
 *
 * # When set, /admin (bull-board and /admin/api/...) needs this key and may change queues (pause,
 * # retry, clean, concurrency). Unset: the board is read-only and the admin API only reads.
 * # CAPFLOW_ADMIN_KEY=
 */
export const AdminEnv = z.object({
  CAPFLOW_ADMIN_KEY: z.string().min(16, "use at least 16 characters").optional(),
});
