import { z } from "zod";
import { CommonEnv, envBoolean, envInt } from "@capflow/common";

/*
 * The HTTP API's variables (`capflow api`), on top of CommonEnv. For .env.example:
 *
 * # Where the HTTP API listens.
 * CAPFLOW_API_HOST=127.0.0.1
 * CAPFLOW_API_PORT=8080
 * # When set, every /v1 route needs `x-api-key: <key>` or `authorization: Bearer <key>`.
 * # CAPFLOW_API_KEY=
 * # Largest request body (uploaded image or JSON), bytes; beyond it the API answers 413.
 * CAPFLOW_API_MAX_BODY_BYTES=20971520
 * # How long POST /v1/captions waits for the caption before answering 202 with a job id to poll.
 * CAPFLOW_API_WAIT_MS=10000
 * # Online captions ahead (waiting + held active by workers) beyond which new requests get 429 +
 * # Retry-After. Size it as capacity × the wait you accept (docs/operations.md).
 * CAPFLOW_API_MAX_QUEUE_DEPTH=256
 * # Fetching {"url": ...} images: byte cap and overall deadline (redirects included, at most 3).
 * CAPFLOW_URL_FETCH_MAX_BYTES=20971520
 * CAPFLOW_URL_FETCH_TIMEOUT_MS=10000
 * # true lets URL fetches reach loopback/private/link-local addresses. Only for tests and closed
 * # networks: it turns the API into an SSRF proxy into your network.
 * CAPFLOW_URL_ALLOW_PRIVATE=false
 */
export const ApiEnv = CommonEnv.extend({
  CAPFLOW_API_PORT: envInt(0, 65535).default(8080),
  CAPFLOW_API_HOST: z.string().default("127.0.0.1"),
  CAPFLOW_API_KEY: z.string().min(16, "use at least 16 characters").optional(),
  CAPFLOW_API_MAX_BODY_BYTES: envInt(1024).default(20 * 1024 * 1024),
  CAPFLOW_API_WAIT_MS: envInt(0, 600_000).default(10_000),
  CAPFLOW_API_MAX_QUEUE_DEPTH: envInt(1).default(256),
  CAPFLOW_URL_FETCH_MAX_BYTES: envInt(1024).default(20 * 1024 * 1024),
  CAPFLOW_URL_FETCH_TIMEOUT_MS: envInt(100, 600_000).default(10_000),
  CAPFLOW_URL_ALLOW_PRIVATE: envBoolean.default(false),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

/** What the server needs from the environment (tests build it directly). */
export interface ApiConfig {
  apiKey?: string;
  maxBodyBytes: number;
  waitMs: number;
  maxQueueDepth: number;
  urlFetch: { maxBytes: number; timeoutMs: number; allowPrivate: boolean };
}

export function apiConfigFrom(env: ApiEnv): ApiConfig {
  return {
    apiKey: env.CAPFLOW_API_KEY,
    maxBodyBytes: env.CAPFLOW_API_MAX_BODY_BYTES,
    waitMs: env.CAPFLOW_API_WAIT_MS,
    maxQueueDepth: env.CAPFLOW_API_MAX_QUEUE_DEPTH,
    urlFetch: {
      maxBytes: env.CAPFLOW_URL_FETCH_MAX_BYTES,
      timeoutMs: env.CAPFLOW_URL_FETCH_TIMEOUT_MS,
      allowPrivate: env.CAPFLOW_URL_ALLOW_PRIVATE,
    },
  };
}
