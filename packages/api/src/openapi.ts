import { z } from "zod";
import {
  ApiError,
  BulkResultLineSchema,
  CaptionDone,
  CaptionFailed,
  CaptionJobAccepted,
  CaptionJobRequest,
  CaptionJobStatus,
  CaptionPending,
  CaptionRequestJson,
} from "./schemas.ts";
import { ADMIN_KEY_HEADER } from "./access.ts";
import { CleanBody, ConcurrencyBody, FailedQuery } from "./admin/admin-schemas.ts";
import { type RegisteredRoute } from "./route-table.ts";

/**
 * Routes the document leaves out: bull-board's own UI and the JSON it calls, under /admin/queues
 * (a third-party page, not an API of ours).
 */
export const UNDOCUMENTED = /^\/admin\/queues(\/|$)/;

/**
 * The document as one server serves it: only the operations that server registered (the web page
 * and the admin routes are registered by the API process, not by every server a test builds).
 */
export function servedDocument(
  doc: Record<string, unknown>,
  routes: readonly RegisteredRoute[],
): Record<string, unknown> {
  const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    const kept = Object.entries(ops).filter(([method]) => served.has(`${method} ${path}`));
    if (kept.length) paths[path] = Object.fromEntries(kept);
  }
  return { ...doc, paths };
}

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
export function openApiDocument(opts: { apiKey: boolean }): Record<string, unknown> {
  const json = (schema: z.ZodType, io: "input" | "output" = "output") => ({
    "application/json": { schema: z.toJSONSchema(schema, { io, unrepresentable: "any" }) },
  });
  const error = (description: string) => ({ description, content: json(ApiError) });
  const id = { name: "id", in: "path", required: true, schema: { type: "string" } };
  const decodeQuery = ["model", "method", "beamWidth"].map((name) => ({
    name,
    in: "query",
    required: false,
    schema:
      name === "beamWidth"
        ? { type: "integer", minimum: 1, maximum: 20 }
        : name === "method"
          ? { enum: ["beam", "greedy", "rerank"], default: "beam" }
          : { type: "string" },
  }));
  const security = opts.apiKey ? [{ apiKey: [] }, { bearer: [] }] : [];
  const html = (description: string) => ({
    description,
    content: { "text/html": { schema: { type: "string" } } },
  });
  const queue = { name: "queue", in: "path", required: true, schema: { type: "string" } };
  // Admin routes: their own key (header, bearer or cookie; access.ts); read-only without one.
  const admin = (summary: string, extra: Record<string, unknown> = {}) => ({
    summary,
    tags: ["admin"],
    security: [{ adminKey: [] }, { bearer: [] }],
    ...extra,
    responses: {
      "200": { description: "Done", content: json(z.unknown()) },
      "401": error("Missing or wrong admin key"),
      "403": error("Changes need the admin key"),
      "404": error("No such queue"),
    },
  });
  const common = {
    "400": error("A malformed request; `issues` names each bad field"),
    ...(opts.apiKey ? { "401": error("Missing or wrong API key") } : {}),
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "capflow API",
      version: "1",
      description: "Image captioning: single images and bulk jobs over ingested datasets.",
    },
    components: {
      securitySchemes: {
        ...(opts.apiKey ? { apiKey: { type: "apiKey", in: "header", name: "x-api-key" } } : {}),
        adminKey: { type: "apiKey", in: "header", name: ADMIN_KEY_HEADER },
        bearer: { type: "http", scheme: "bearer" },
      },
    },
    ...(opts.apiKey ? { security } : {}),
    paths: {
      "/v1/captions": {
        post: {
          summary: "Caption one image",
          description:
            "Upload the image (multipart field `image`, or a raw `image/*` / `application/octet-stream` body with decode " +
            "options in the query), or name one (`key`) or a URL (`url`) in JSON. Answers 200 with the caption if it is " +
            "ready within the server's wait, else 202 with the id to poll. Identical requests share one job.",
          parameters: decodeQuery,
          requestBody: {
            required: true,
            content: {
              ...json(CaptionRequestJson, "input"),
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: { image: { type: "string", contentMediaType: "application/octet-stream" } },
                  required: ["image"],
                },
              },
              "image/*": { schema: { type: "string", contentMediaType: "image/*" } },
              "application/octet-stream": {
                schema: { type: "string", contentMediaType: "application/octet-stream" },
              },
            },
          },
          responses: {
            "200": { description: "The caption", content: json(CaptionDone) },
            "202": { description: "Accepted, not finished yet: poll", content: json(CaptionPending) },
            ...common,
            "404": error("`key` names no stored image"),
            "413": error("The body or the fetched image is too large"),
            "415": error("Not a JPEG, PNG, GIF or WebP image"),
            "422": { description: "The caption job failed", content: json(CaptionFailed) },
            "429": error("The captions queue is full; retry after `Retry-After` seconds"),
            "504": error("Fetching the URL took too long"),
          },
        },
      },
      "/v1/captions/{id}": {
        get: {
          summary: "A caption request's status or result",
          parameters: [id],
          responses: {
            "200": {
              description: "Done, queued, running or failed",
              content: json(z.union([CaptionDone, CaptionPending, CaptionFailed])),
            },
            ...common,
            "404": error("Unknown id (results are kept for 24 hours)"),
          },
        },
      },
      "/v1/caption-jobs": {
        post: {
          summary: "Caption every image of an ingested dataset",
          requestBody: { required: true, content: json(CaptionJobRequest, "input") },
          responses: {
            "202": { description: "Submitted", content: json(CaptionJobAccepted) },
            ...common,
            "404": error("No such dataset"),
          },
        },
      },
      "/v1/caption-jobs/{id}": {
        get: {
          summary: "A bulk job's progress",
          parameters: [id],
          responses: {
            "200": { description: "Progress", content: json(CaptionJobStatus) },
            ...common,
            "404": error("Unknown id"),
          },
        },
        delete: {
          summary: "Cancel a bulk job (shards not started are removed; running ones finish)",
          parameters: [id],
          responses: {
            "200": { description: "Cancelled", content: json(CaptionJobStatus) },
            ...common,
            "404": error("Unknown id"),
          },
        },
      },
      "/v1/caption-jobs/{id}/retry": {
        post: {
          summary: "Retry the failed shards of a bulk job",
          parameters: [id],
          responses: {
            "200": {
              description: "Retried",
              content: json(CaptionJobStatus.extend({ retried: z.number().int() })),
            },
            ...common,
            "404": error("Unknown id"),
            "409": error("The job was cancelled"),
          },
        },
      },
      "/v1/caption-jobs/{id}/results": {
        get: {
          summary: "A finished bulk job's results, one JSON object per line",
          parameters: [id],
          responses: {
            "200": {
              description: "One line per image (caption, or error with a reason)",
              content: { "application/x-ndjson": { schema: z.toJSONSchema(BulkResultLineSchema) } },
            },
            ...common,
            "404": error("Unknown id"),
            "409": error("Not done yet"),
          },
        },
      },
      "/healthz": {
        get: { summary: "Liveness", security: [], responses: { "200": { description: "Alive" } } },
      },
      "/readyz": {
        get: {
          summary: "Redis and the store reachable",
          security: [],
          responses: { "200": { description: "Ready" }, "503": { description: "Not ready" } },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          security: [],
          responses: { "200": { description: "Metrics" } },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } },
      },
      "/v1/status": {
        get: {
          summary: "Where the pipeline stands: datasets, feature shards, runs, models, bulk jobs",
          parameters: [{ name: "dataset", in: "query", required: false, schema: { type: "string" } }],
          responses: {
            "200": { description: "The status (the pipeline page shows it)", content: json(z.unknown()) },
            ...common,
            "404": error("No ingested dataset of that name"),
          },
        },
      },
      "/v1/runs/{runId}/report": {
        get: {
          summary: "A training run's HTML report (written by `capflow report <run>`)",
          parameters: [{ name: "runId", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": html("The report"), ...common, "404": error("No report for that run") },
        },
      },
      "/": {
        get: {
          summary: "The web page: caption an image",
          security: [],
          responses: { "200": html("The page") },
        },
      },
      "/pipeline": {
        get: {
          summary: "The web page: datasets, runs and bulk jobs",
          security: [],
          responses: { "200": html("The page") },
        },
      },
      "/ui/{file}": {
        get: {
          summary: "The web page's scripts and styles",
          security: [],
          parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": { description: "The file" }, "404": error("No such file") },
        },
      },
      "/admin/api/queues": { get: admin("Every queue's counts, paused state and concurrency") },
      "/admin/api/queues/{queue}": { get: admin("One queue's counts", { parameters: [queue] }) },
      "/admin/api/queues/{queue}/failed": {
        get: admin("A queue's failed jobs", {
          parameters: [
            queue,
            ...Object.keys(FailedQuery.shape).map((name) => ({
              name,
              in: "query",
              required: false,
              schema: { type: "integer" },
            })),
          ],
        }),
      },
      "/admin/api/queues/{queue}/pause": { post: admin("Pause a queue", { parameters: [queue] }) },
      "/admin/api/queues/{queue}/resume": { post: admin("Resume a queue", { parameters: [queue] }) },
      "/admin/api/queues/{queue}/retry-failed": {
        post: admin("Retry a queue's failed jobs", { parameters: [queue] }),
      },
      "/admin/api/queues/{queue}/clean": {
        post: admin("Remove old jobs of one state", {
          parameters: [queue],
          requestBody: { required: false, content: json(CleanBody, "input") },
        }),
      },
      "/admin/api/queues/{queue}/concurrency": {
        put: admin("Set (or clear, with null) a queue's global concurrency", {
          parameters: [queue],
          requestBody: { required: true, content: json(ConcurrencyBody, "input") },
        }),
      },
    },
  };
}
