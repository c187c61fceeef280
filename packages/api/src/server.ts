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
import { checkAccess } from "./access.ts";
import { DEFAULT_BULK_LIMITS, type ApiConfig } from "./api-env.ts";
import { QueueDepthGate } from "./backpressure.ts";
import { BulkAdmission } from "./bulk-admission.ts";
import { Slots } from "./slots.ts";
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
import { errorResponse, ValidationProblem } from "./error-response.ts";
import { asFetchError, FETCH_ERROR_CODES, fetchUrl, type FetchedUrl } from "./fetch-url.ts";
import { openApiDocument, servedDocument } from "./openapi.ts";
import { ApiProblem } from "./problem.ts";
import { registeredRoutes, trackRoutes } from "./route-table.ts";
import { CaptionJobRequest, CaptionQuery, CaptionRequestJson } from "./schemas.ts";

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
  "forbidden",
  "queue_full",
  "too_many_uploads",
  "too_many_fetches",
  "too_many_jobs",
  "unknown_model",
  "too_large",
  "bad_request",
  "unsupported_image",
  "unsupported_media_type",
  "redis_unavailable",
  // A URL the API could not fetch is refused with the fetch's own code.
  ...FETCH_ERROR_CODES,
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
  trackRoutes(app);
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
  const bulk = { store, queue: bulkQueue, redis: ctx.connection };
  const admission = new BulkAdmission({
    redis: deps.redis,
    prefix: deps.prefix,
    store,
    queue: bulkQueue,
    limits: { ...DEFAULT_BULK_LIMITS, ...config.bulk },
  });
  const served = new Set(config.models ?? ["default"]);
  const assertServed = (model: string | undefined) => {
    if (model !== undefined && !served.has(model))
      throw new ApiProblem(
        404,
        "unknown_model",
        `no model "${model}" is served here (served: ${[...served].join(", ")})`,
      );
  };
  // Bodies are read into memory whole (an image is decoded from one buffer): 40 concurrent 19 MB
  // uploads took the API from 209 MB to 1,068 MB RSS and it stayed there. A slot is taken before the
  // body is read and given back once the image is stored, so at most this many bodies are in memory.
  const uploads = new Slots(config.maxConcurrentUploads ?? 8);
  const fetches = new Slots(config.urlFetch.maxConcurrent ?? 8);
  const fetchWith =
    deps.fetchImage ??
    ((url: string) =>
      fetchUrl(url, {
        maxBytes: config.urlFetch.maxBytes,
        timeoutMs: config.urlFetch.timeoutMs,
        allowPrivate: config.urlFetch.allowPrivate,
      }));
  const fetchImage = async (url: string): Promise<FetchedUrl> => {
    const release = fetches.tryTake();
    if (!release)
      throw new ApiProblem(429, "too_many_fetches", "too many URL fetches in progress; retry shortly", {
        "retry-after": "1",
      });
    try {
      // Whatever the fetcher throws is the URL's failure, classified here by where it came from.
      return await fetchWith(url).catch((err: unknown) => Promise.reject(asFetchError(err)));
    } finally {
      release();
    }
  };
  app.addHook("onClose", async () => {
    await events.close();
    await queue.close();
    await bulkQueue.close();
  });

  for (const type of ["application/octet-stream", /^image\/[\w.+-]+$/]) {
    app.addContentTypeParser(type, { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  }
  // JSON bodies are a few fields ({url, model, ...}): they need not share the image body limit.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(
    "application/json",
    { parseAs: "string", bodyLimit: 64 * 1024 },
    app.getDefaultJsonParser("error", "ignore"),
  );
  await app.register(multipart, {
    limits: { fileSize: config.maxBodyBytes, files: 1, fields: 10, fieldSize: 256, parts: 12 },
  });

  // One access policy for /v1, /metrics and /admin (access.ts), by raw URL: neither an odd spelling
  // of a path nor an unmatched route slips past. /admin's own hook applies the same policy.
  const keys = { apiKey: config.apiKey, adminKey: config.adminKey };
  app.addHook("onRequest", async (req) => {
    const refused = checkAccess(req, keys);
    if (refused && !req.url.toLowerCase().startsWith("/admin"))
      throw new ApiProblem(refused.status, refused.code, refused.message, refused.headers);
  });

  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    requests.inc({ route, status: String(reply.statusCode) });
    requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const answer = errorResponse(err, { maxBodyBytes: config.maxBodyBytes });
    if (answer.log)
      log[answer.log.level]({ ...answer.log.fields, route: req.routeOptions.url }, answer.log.msg);
    if (REJECT_REASONS.has(answer.body.error)) rejected.inc({ reason: answer.body.error });
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
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
  // Built on first request, when every route (the web page's and admin's too) is registered.
  let doc: Record<string, unknown> | undefined;
  app.get("/openapi.json", async () => {
    doc ??= servedDocument(openApiDocument({ apiKey: Boolean(config.apiKey) }), registeredRoutes(app));
    return doc;
  });

  const uploadSlot = new WeakMap<FastifyRequest, () => void>();
  const admitCaption = async (req: FastifyRequest, reply: FastifyReply) => {
    // Before the body is read: a full queue, an unknown model in the query string, or too many
    // image bodies in flight are refused without reading a byte of the image.
    const retryAfter = await gate.admit();
    if (retryAfter !== undefined) {
      throw new ApiProblem(429, "queue_full", "too many captions waiting; retry later", {
        "retry-after": String(retryAfter),
      });
    }
    assertServed(parse(CaptionQuery, req.query).model);
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json\b/i.test(type)) {
      const release = uploads.tryTake();
      if (!release)
        throw new ApiProblem(429, "too_many_uploads", "too many image uploads in progress; retry shortly", {
          "retry-after": "1",
        });
      uploadSlot.set(req, release);
      reply.raw.once("close", release);
    }
  };
  const releaseUpload = (req: FastifyRequest) => {
    uploadSlot.get(req)?.();
    // The stored bytes are not needed while the request waits for its caption.
    (req as { body: unknown }).body = undefined;
  };

  app.post("/v1/captions", { onRequest: admitCaption }, async (req, reply) => {
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
      assertServed(query.model);
      image = await storeImage(store, bytes);
      releaseUpload(req);
    } else if (Buffer.isBuffer(req.body)) {
      image = await storeImage(store, req.body);
      releaseUpload(req);
    } else if (typeof req.body === "object" && req.body !== null) {
      const body = parse(CaptionRequestJson, req.body);
      assertServed(body.model);
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
    assertServed(body.model);
    const submitted = await admission.admit(body, () => submitCaptionBatch(bulk, body));
    const location = `/v1/caption-jobs/${submitted.id}`;
    return reply
      .code(202)
      .header("location", location)
      .send({ ...submitted, status: location });
  });
  app.get<{ Params: { id: string } }>("/v1/caption-jobs/:id", async (req) =>
    captionBatchStatus(bulk, req.params.id),
  );
  app.delete<{ Params: { id: string } }>("/v1/caption-jobs/:id", async (req) => {
    const status = await cancelCaptionBatch(bulk, req.params.id);
    await admission.forget(req.params.id);
    return status;
  });
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

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new ValidationProblem(result.error);
  return result.data;
}

export type { FastifyInstance, FastifyRequest };
