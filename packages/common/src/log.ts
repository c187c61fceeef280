import { pino, type Logger } from "pino";

export type { Logger };

/** One structured JSON logger per process; children carry `{ role, queue, jobId }`. */
export function createLogger(role: string, level = process.env.CAPFLOW_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
