import { z } from "zod";

/** Thrown at start-up when the environment is wrong; the message names every bad variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses a role's environment once, at boot. A bad value fails with a message naming the variable,
 * what was expected and what was found, never with a stack trace into zod.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  source: NodeJS.ProcessEnv = process.env,
  role = "capflow",
): z.infer<S> {
  // An empty variable means unset (`CAPFLOW_REDIS_URL=` in a .env file or a compose file).
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== ""));
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const variable = issue.path.join(".") || "(environment)";
    return `  ${variable}: ${issue.message}`;
  });
  throw new ConfigError(
    `${role}: invalid configuration\n${lines.join("\n")}\nSee .env.example for every variable.`,
  );
}

/** "true"/"1"/"yes" and friends; env vars are strings, z.coerce.boolean would take "false" as true. */
export const envBoolean = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

export const envInt = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);
