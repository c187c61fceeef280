import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import multipart from "@fastify/multipart";
import type { z } from "zod";
import {
  createQueue,
  createQueueEvents,
  metrics,
  registerOpsRoutes,
  type Logger,
  type ObjectStore,
  type QueueContext,
} from "@capflow/common";
import type { ApiConfig } from "./api-env.ts";
import { QueueDepthGate } from "./backpressure.ts";
import {
  cancelCaptionBatch,
  captionBatchStatus,
  openCaptionBatchResults,
  retryCaptionBatch,
  submitCaptionBatch,
} from "./caption-jobs.ts";
import {
  awaitCaption,
  captionById,
  enqueueImageCaption,
  existingImage,
  storeImage,
  type CaptionAnswer,
} from "./captions.ts";
import { fetchUrl, FetchUrlError, type FetchedUrl } from "./fetch-url.ts";
import { openApiDocument } from "./openapi.ts";
import { ApiProblem } from "./problem.ts";
import { CaptionJobRequest, CaptionQuery, CaptionRequestJson, describeIssues } from "./schemas.ts";

export type { ApiConfig } from "./api-env.ts";

export interface ApiDeps {
  store: ObjectStore;
  /** A producer connection (fails fast); the server makes its own blocking one for queue events. */
  redis: QueueContext["connection"];
  prefix: string;
  log: Logger;
  config: ApiConfig;
  /** Replaces the SSRF-safe fetcher (tests inject one that allows their loopback server). */
  fetchImage?: (url: string) => Promise<FetchedUrl>;
}

// Bounded labels only: the route pattern (never the URL), the status code, a fixed set of reasons.
const requests = metrics.counter("capflow_api_requests_total", "HTTP requests by route pattern and status", [
  "route",
  "status",
]);
const requestSeconds = metrics.histogram(
  "capflow_api_request_seconds",
  "HTTP request duration by route pattern",
  ["route"],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
);
const rejected = metrics.counter(
  "capflow_api_rejected_total",
  "Requests refused before any work, by reason",
  ["reason"],
);
const REJECT_REASONS = new Set([
  "unauthorized",
  "queue_full",
  "too_large",
  "bad_request",
  "unsupported_image",
  "unsupported_media_type",
  "refused_address",
  "bad_url",
  "timeout",
  "http_status",
  "too_many_redirects",
  "redis_unavailable",
]);

/** The HTTP API: single captions, bulk caption jobs, OpenAPI, health and metrics on one port. */
export async function buildApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, store, log } = deps;
  const app = Fastify({
    bodyLimit: config.maxBodyBytes,
    logger: false,
    // Ids in paths are ours (content hashes, batch ids); no need for long URLs.
    routerOptions: { maxParamLength: 200 },
  });
  const ctx = { connection: deps.redis, prefix: deps.prefix };
  const queue = createQueue("captions", ctx);
  // Job.waitUntilFinished adds a 'closing' listener on the queue per waiting request; their number is
  // bounded by the admission gate and each is removed when its wait ends, so the default cap of 10
  // only produced MaxListenersExceededWarning under ordinary load.
  queue.setMaxListeners(0);
  const events = createQueueEvents("captions", ctx);
  events.on("error", (err) => log.warn({ err: err.message }, "captions queue events error"));
  const gate = new QueueDepthGate(queue, config.maxQueueDepth);
  const bulkQueue = createQueue("caption-bulk", ctx);
  const bulk = { store, queue: bulkQueue };
  const fetchImage =
    deps.fetchImage ??
    ((url: string) =>
      fetchUrl(url, {
        maxBytes: config.urlFetch.maxBytes,
        timeoutMs: config.urlFetch.timeoutMs,
        allowPrivate: config.urlFetch.allowPrivate,
      }));
  app.addHook("onClose", async () => {
    await events.close();
    await queue.close();
    await bulkQueue.close();
  });

  for (const type of ["application/octet-stream", /^image\/[\w.+-]+$/]) {
    app.addContentTypeParser(type, { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  }
  await app.register(multipart, {
    limits: { fileSize: config.maxBodyBytes, files: 1, fields: 10, fieldSize: 256, parts: 12 },
  });

  const apiKey = config.apiKey ? Buffer.from(config.apiKey) : undefined;
  app.addHook("onRequest", async (req) => {
    // By route pattern and by raw URL: neither an odd spelling of the path nor an unmatched route
    // under /v1 slips past.
    if (!apiKey || !(req.routeOptions.url?.startsWith("/v1/") || req.url.toLowerCase().startsWith("/v1")))
      return;
    const header = req.headers["x-api-key"] ?? req.headers.authorization?.replace(/^Bearer\s+/i, "");
    const given = Buffer.from(typeof header === "string" ? header : "");
    if (given.length !== apiKey.length || !timingSafeEqual(given, apiKey)) {
      throw new ApiProblem(401, "unauthorized", "send the API key as x-api-key or authorization: Bearer", {
        "www-authenticate": "Bearer",
      });
    }
  });

  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    requests.inc({ route, status: String(reply.statusCode) });
    requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let status = 500;
    let code = "internal";
    let message = "internal error";
    let extra: Record<string, unknown> = {};
    if (err instanceof ApiProblem) {
      status = err.status;
      code = err.code;
      message = err.message;
      void reply.headers(err.headers);
    } else if (err instanceof FetchUrlError) {
      status = err.code === "too_large" ? 413 : err.code === "timeout" ? 504 : 400;
      code = err.code;
      message = `fetching the URL: ${err.message}`;
    } else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || err.code === "FST_REQ_FILE_TOO_LARGE") {
      status = 413;
      code = "too_large";
      message = `the body is larger than ${config.maxBodyBytes} bytes`;
    } else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      status = 415;
      code = "unsupported_media_type";
      message = "send JSON, multipart/form-data, image/* or application/octet-stream";
    } else if (isValidation(err)) {
      status = 400;
      code = "bad_request";
      const d = describeIssues(err.zod);
      message = d.message;
      extra = { issues: d.issues };
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      code = status === 413 ? "too_large" : "bad_request";
      message = err.message;
    } else if (/Connection is closed|Stream isn't writeable|ECONNREFUSED/.test(err.message)) {
      status = 503;
      code = "redis_unavailable";
      message = "the queue is unavailable, retry shortly";
      void reply.header("retry-after", "5");
    } else {
      log.error({ err, route: req.routeOptions.url }, "request failed");
    }
    if (status < 500 || code === "redis_unavailable") {
      if (REJECT_REASONS.has(code)) rejected.inc({ reason: code });
    }
    return reply.code(status).send({ error: code, message, ...extra });
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url.split("?")[0]}` }),
  );

  registerOpsRoutes(app, {
    readiness: {
      redis: async () => void (await deps.redis.ping()),
      store: () => store.ping(),
    },
  });
  const doc = openApiDocument({ apiKey: Boolean(apiKey) });
  app.get("/openapi.json", async () => doc);

  app.post("/v1/captions", async (req, reply) => {
    const retryAfter = await gate.admit();
    if (retryAfter !== undefined) {
      throw new ApiProblem(429, "queue_full", "too many captions waiting; retry later", {
        "retry-after": String(retryAfter),
      });
    }
    let query = parse(CaptionQuery, req.query);
    let image: { sha: string; key: string };
    if (req.isMultipart()) {
      const file = await req.file();
      if (!file || file.fieldname !== "image")
        throw new ApiProblem(400, "bad_request", "image: send the image as multipart field 'image'");
      const bytes = await file.toBuffer();
      const fields: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(file.fields)) {
        if (value && !Array.isArray(value) && value.type === "field") fields[name] = value.value;
      }
      query = { ...query, ...parse(CaptionQuery, fields) };
      image = await storeImage(store, bytes);
    } else if (Buffer.isBuffer(req.body)) {
      image = await storeImage(store, req.body);
    } else if (typeof req.body === "object" && req.body !== null) {
      const body = parse(CaptionRequestJson, req.body);
      query = { model: body.model, method: body.method, beamWidth: body.beamWidth };
      if (body.key) image = await existingImage(store, body.key);
      else image = await storeImage(store, (await fetchImage(body.url!)).bytes);
    } else {
      throw new ApiProblem(
        415,
        "unsupported_media_type",
        "send JSON, multipart/form-data, image/* or application/octet-stream",
      );
    }
    const decode = {
      model: query.model ?? "default",
      method: query.method ?? "beam",
      beamWidth: query.beamWidth ?? 3,
    };
    const job = await enqueueImageCaption(queue, image, decode);
    return sendAnswer(reply, await awaitCaption(queue, job, events, config.waitMs));
  });

  app.get<{ Params: { id: string } }>("/v1/captions/:id", async (req, reply) => {
    const answer = await captionById(queue, req.params.id);
    return reply.code(answer.status === "failed" ? 422 : 200).send(answer);
  });

  app.post("/v1/caption-jobs", async (req, reply) => {
    const body = parse(CaptionJobRequest, req.body);
    const submitted = await submitCaptionBatch(bulk, body);
    const location = `/v1/caption-jobs/${submitted.id}`;
    return reply
      .code(202)
      .header("location", location)
      .send({ ...submitted, status: location });
  });
  app.get<{ Params: { id: string } }>("/v1/caption-jobs/:id", async (req) =>
    captionBatchStatus(bulk, req.params.id),
  );
  app.delete<{ Params: { id: string } }>("/v1/caption-jobs/:id", async (req) =>
    cancelCaptionBatch(bulk, req.params.id),
  );
  app.post<{ Params: { id: string } }>("/v1/caption-jobs/:id/retry", async (req) =>
    retryCaptionBatch(bulk, req.params.id),
  );
  app.get<{ Params: { id: string } }>("/v1/caption-jobs/:id/results", async (req, reply) => {
    const stream = await openCaptionBatchResults(bulk, req.params.id);
    return reply.type("application/x-ndjson").send(stream);
  });

  await events.waitUntilReady();
  return app;
}

function sendAnswer(reply: FastifyReply, answer: CaptionAnswer) {
  switch (answer.status) {
    case "done":
      return reply.code(200).send(answer);
    case "failed":
      return reply.code(422).send(answer);
    case "queued":
    case "running":
      return reply.code(202).header("location", answer.poll).send(answer);
  }
}

class ValidationProblem extends Error {
  constructor(readonly zod: z.ZodError) {
    super("validation failed");
  }
}
const isValidation = (err: unknown): err is ValidationProblem => err instanceof ValidationProblem;

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new ValidationProblem(result.error);
  return result.data;
}

export type { FastifyInstance, FastifyRequest };
