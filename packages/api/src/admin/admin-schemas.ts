// The admin JSON routes' inputs: validated by register-admin.ts, described by the OpenAPI document.
import { z } from "zod";
import { CLEANABLE_STATES } from "@capflow/common";

export const CleanBody = z.object({
  state: z.enum(CLEANABLE_STATES).default("completed"),
  olderThanMs: z
    .number()
    .int()
    .min(0)
    .default(24 * 3600 * 1000),
  limit: z.number().int().min(0).max(100_000).default(0),
});
export const ConcurrencyBody = z.object({ concurrency: z.number().int().min(1).max(1024).nullable() });
export const FailedQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
