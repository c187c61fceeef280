import type { z } from "zod";
import { FetchUrlError } from "./fetch-url.ts";
import { ApiProblem } from "./problem.ts";
import { describeIssues } from "./schemas.ts";

/** A request body or query that failed its zod schema (server.ts `parse`). */
export class ValidationProblem extends Error {
  override name = "ValidationProblem";
  constructor(readonly zod: z.ZodError) {
    super("validation failed");
  }
}

/** HTTP status of each fetch failure: the client's URL at fault (4xx) or the remote server (5xx). */
const FETCH_STATUS: Record<FetchUrlError["code"], number> = {
  bad_url: 400,
  refused_address: 400,
  too_many_redirects: 400,
  too_large: 413,
  http_status: 400,
  fetch_failed: 502,
  timeout: 504,
};

/** What the API answers for an error, and what (if anything) it logs about it. */
export interface ErrorResponse {
  status: number;
  body: { error: string; message: string } & Record<string, unknown>;
  headers: Record<string, string>;
  log?: { level: "info" | "error"; msg: string; fields: Record<string, unknown> };
}

type ThrownError = Error & { statusCode?: number; code?: string };

/**
 * Pure: an error thrown while serving a request → its HTTP status, `{ error, message }` body, headers
 * and log line. Internal detail (stack, fetch addresses and DNS answers) goes to the log, never into
 * the body.
 */
export function errorResponse(err: ThrownError, opts: { maxBodyBytes: number }): ErrorResponse {
  const answer = (
    status: number,
    error: string,
    message: string,
    more: Partial<Pick<ErrorResponse, "headers" | "log">> & { extra?: Record<string, unknown> } = {},
  ): ErrorResponse => ({
    status,
    body: { error, message, ...more.extra },
    headers: more.headers ?? {},
    ...(more.log ? { log: more.log } : {}),
  });
  if (err instanceof ApiProblem) return answer(err.status, err.code, err.message, { headers: err.headers });
  if (err instanceof FetchUrlError)
    // Classified where it happened (fetch-url.ts): a refused socket to the user's host is the
    // remote's fault, never a Redis outage. The detail (addresses, DNS answers) stays in the log.
    return answer(FETCH_STATUS[err.code], err.code, `fetching the URL: ${err.message}`, {
      log: {
        level: "info",
        msg: "url fetch refused or failed",
        fields: { code: err.code, detail: err.detail },
      },
    });
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || err.code === "FST_REQ_FILE_TOO_LARGE")
    return answer(413, "too_large", `the body is larger than ${opts.maxBodyBytes} bytes`);
  if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    return answer(
      415,
      "unsupported_media_type",
      "send JSON, multipart/form-data, image/* or application/octet-stream",
    );
  if (err instanceof ValidationProblem) {
    const d = describeIssues(err.zod);
    return answer(400, "bad_request", d.message, { extra: { issues: d.issues } });
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
    return answer(err.statusCode, err.statusCode === 413 ? "too_large" : "bad_request", err.message);
  if (/Connection is closed|Stream isn't writeable|ECONNREFUSED/.test(err.message))
    return answer(503, "redis_unavailable", "the queue is unavailable, retry shortly", {
      headers: { "retry-after": "5" },
    });
  return answer(500, "internal", "internal error", {
    log: { level: "error", msg: "request failed", fields: { err } },
  });
}
