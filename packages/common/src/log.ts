import { pino, type Logger } from "pino";

export type { Logger };

/**
 * One structured JSON logger per process; children carry `{ role, queue, jobId }`.
 *
 * Logs go to stderr (fd 2), never stdout: the CLI's stdout carries data (`capflow caption --bulk >
 * results.jsonl`), and log lines on stdout ended up inside redirected results. Containers and the
 * supervisor collect both streams, so services lose nothing.
 */
export function createLogger(role: string, level = process.env.CAPFLOW_LOG_LEVEL ?? "info"): Logger {
  return pino(
    { level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
}
