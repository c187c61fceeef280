import { z } from "zod";
import { CommonEnv, envBoolean, envInt, ServedModelsEnv } from "@capflow/common";

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
 * # The models served (same list as the caption workers); another name answers 404 at the API.
 * CAPFLOW_CAPTION_MODELS=default
 * # Image bodies (raw or multipart) read at once; past it, 429 before the body is read. Each can be
 * # CAPFLOW_API_MAX_BODY_BYTES, held about twice while it is parsed (docs/security.md).
 * CAPFLOW_API_MAX_CONCURRENT_UPLOADS=8
 * # URL fetches at once (each holds up to CAPFLOW_URL_FETCH_MAX_BYTES); past it, 429.
 * CAPFLOW_URL_FETCH_MAX_CONCURRENT=8
 * # Bulk caption jobs: batches in flight per dataset and in all, and the most images in one batch.
 * CAPFLOW_BULK_MAX_IN_FLIGHT_PER_DATASET=2
 * CAPFLOW_BULK_MAX_IN_FLIGHT=16
 * CAPFLOW_BULK_MAX_IMAGES=200000
 * # Retention of what the API writes to the store: uploaded images and bulk caption batches expire
 * # after these many hours; the API sweeps every CAPFLOW_SWEEP_INTERVAL_SECONDS (0 = never).
 * CAPFLOW_UPLOAD_TTL_HOURS=24
 * CAPFLOW_CAPTION_BATCH_TTL_HOURS=168
 * CAPFLOW_SWEEP_INTERVAL_SECONDS=3600
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
  CAPFLOW_CAPTION_MODELS: ServedModelsEnv,
  CAPFLOW_API_MAX_CONCURRENT_UPLOADS: envInt(1, 1024).default(8),
  CAPFLOW_URL_FETCH_MAX_CONCURRENT: envInt(1, 1024).default(8),
  CAPFLOW_BULK_MAX_IN_FLIGHT_PER_DATASET: envInt(1, 1000).default(2),
  CAPFLOW_BULK_MAX_IN_FLIGHT: envInt(1, 10_000).default(16),
  CAPFLOW_BULK_MAX_IMAGES: envInt(1).default(200_000),
  CAPFLOW_UPLOAD_TTL_HOURS: envInt(1).default(24),
  CAPFLOW_CAPTION_BATCH_TTL_HOURS: envInt(1).default(168),
  CAPFLOW_SWEEP_INTERVAL_SECONDS: envInt(0).default(3600),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

/** What the server needs from the environment (tests build it directly; limits left out get defaults). */
export interface ApiConfig {
  apiKey?: string;
  /** CAPFLOW_ADMIN_KEY: the server's /metrics (and registerAdmin's /admin) accept it. */
  adminKey?: string;
  maxBodyBytes: number;
  waitMs: number;
  maxQueueDepth: number;
  urlFetch: { maxBytes: number; timeoutMs: number; allowPrivate: boolean; maxConcurrent?: number };
  /** Served model names; default ["default"]. */
  models?: readonly string[];
  maxConcurrentUploads?: number;
  bulk?: Partial<BulkLimits>;
}

export interface BulkLimits {
  maxInFlightPerDataset: number;
  maxInFlight: number;
  maxImages: number;
}

export const DEFAULT_BULK_LIMITS: BulkLimits = {
  maxInFlightPerDataset: 2,
  maxInFlight: 16,
  maxImages: 200_000,
};

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
      maxConcurrent: env.CAPFLOW_URL_FETCH_MAX_CONCURRENT,
    },
    models: env.CAPFLOW_CAPTION_MODELS,
    maxConcurrentUploads: env.CAPFLOW_API_MAX_CONCURRENT_UPLOADS,
    bulk: {
      maxInFlightPerDataset: env.CAPFLOW_BULK_MAX_IN_FLIGHT_PER_DATASET,
      maxInFlight: env.CAPFLOW_BULK_MAX_IN_FLIGHT,
      maxImages: env.CAPFLOW_BULK_MAX_IMAGES,
    },
  };
}
