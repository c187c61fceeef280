import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { Queue } from "bullmq";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RedisClient } from "@capflow/common";
import type { z } from "zod";
import {
  cleanJobs,
  listFailed,
  pauseQueue,
  queueStats,
  resumeQueue,
  retryFailed,
  setConcurrency,
} from "@capflow/common";
import { ADMIN_KEY_COOKIE, ADMIN_KEY_HEADER, checkAccess } from "../access.ts";
import { CleanBody, ConcurrencyBody, FailedQuery } from "./admin-schemas.ts";

export interface AdminOptions {
  queues: Queue[];
  /** The producer connection and queue prefix, for the concurrency keys. */
  redis: RedisClient;
  prefix: string;
  /** CAPFLOW_ADMIN_KEY. Without it the board is read-only and every mutating route answers 403. */
  adminKey?: string;
  /** CAPFLOW_API_KEY: set without an admin key, /admin is closed (api/access.ts says why). */
  apiKey?: string;
  /** Read-only board even with a key (mutating /admin/api routes still work with the key). */
  readOnly?: boolean;
}

export { ADMIN_KEY_COOKIE, ADMIN_KEY_HEADER };

/**
 * Queue administration for the API server: bull-board at `/admin/queues` and JSON routes under
 * `/admin/api/queues/...` (stats, failed, pause, resume, retry-failed, clean, concurrency).
 *
 * Access (api/access.ts, the same policy as /v1 and /metrics): with no key configured the board is
 * read-only and the JSON routes only read; with `CAPFLOW_ADMIN_KEY` set, everything under `/admin`
 * needs the key (header `x-capflow-admin-key`, `Authorization: Bearer`, or cookie `capflow_admin_key`
 * for browsers, whose changes must come from the same origin); with only `CAPFLOW_API_KEY`, /admin is
 * closed.
 */
export async function registerAdmin(app: FastifyInstance, opts: AdminOptions): Promise<void> {
  const byName = new Map(opts.queues.map((q) => [q.name, q]));
  const boardReadOnly = opts.readOnly === true || !opts.adminKey;

  await app.register(async (scope) => {
    // POST /pause and friends carry no body; accept an empty JSON body rather than answer 400.
    scope.removeContentTypeParser("application/json");
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
      const text = String(body).trim();
      if (text === "") return done(null, {});
      try {
        done(null, JSON.parse(text));
      } catch (err) {
        done(Object.assign(err as Error, { statusCode: 400 }), undefined);
      }
    });
    scope.addHook("onRequest", async (req: FastifyRequest, reply: FastifyReply) => {
      const refused = checkAccess(req, { adminKey: opts.adminKey, apiKey: opts.apiKey });
      if (refused) {
        return reply
          .code(refused.status)
          .headers(refused.headers ?? {})
          .send({ error: refused.code, message: refused.message });
      }
      const mutating = req.method !== "GET" && req.method !== "HEAD";
      if (mutating && boardReadOnly && req.url.startsWith("/admin/queues")) {
        return reply.code(403).send({ error: "the queue board is read-only" });
      }
      return undefined;
    });

    const board = new FastifyAdapter();
    board.setBasePath("/admin/queues");
    createBullBoard({
      queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: boardReadOnly })),
      serverAdapter: board,
      options: { uiConfig: { boardTitle: "capflow queues" } },
    });
    await scope.register(board.registerPlugin(), { prefix: "/admin/queues" });

    const queueOf = (req: FastifyRequest, reply: FastifyReply): Queue | undefined => {
      const name = (req.params as { queue: string }).queue;
      const q = byName.get(name);
      if (!q)
        void reply.code(404).send({ error: `no queue "${name}"; known: ${[...byName.keys()].join(", ")}` });
      return q;
    };
    const badRequest = (reply: FastifyReply, err: z.ZodError) =>
      reply
        .code(400)
        .send({ error: err.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ") });

    scope.get("/admin/api/queues", async () =>
      Promise.all(opts.queues.map((q) => queueStats(q, opts.redis, opts.prefix))),
    );
    scope.get("/admin/api/queues/:queue", async (req, reply) => {
      const q = queueOf(req, reply);
      return q ? queueStats(q, opts.redis, opts.prefix) : reply;
    });
    scope.get("/admin/api/queues/:queue/failed", async (req, reply) => {
      const q = queueOf(req, reply);
      if (!q) return reply;
      const query = FailedQuery.safeParse(req.query);
      if (!query.success) return badRequest(reply, query.error);
      return { jobs: await listFailed(q, query.data) };
    });
    scope.post("/admin/api/queues/:queue/pause", async (req, reply) => {
      const q = queueOf(req, reply);
      if (!q) return reply;
      await pauseQueue(q);
      return { queue: q.name, paused: true };
    });
    scope.post("/admin/api/queues/:queue/resume", async (req, reply) => {
      const q = queueOf(req, reply);
      if (!q) return reply;
      await resumeQueue(q);
      return { queue: q.name, paused: false };
    });
    scope.post("/admin/api/queues/:queue/retry-failed", async (req, reply) => {
      const q = queueOf(req, reply);
      return q ? retryFailed(q) : reply;
    });
    scope.post("/admin/api/queues/:queue/clean", async (req, reply) => {
      const q = queueOf(req, reply);
      if (!q) return reply;
      const body = CleanBody.safeParse(req.body ?? {});
      if (!body.success) return badRequest(reply, body.error);
      return cleanJobs(q, body.data);
    });
    scope.put("/admin/api/queues/:queue/concurrency", async (req, reply) => {
      const q = queueOf(req, reply);
      if (!q) return reply;
      const body = ConcurrencyBody.safeParse(req.body);
      if (!body.success) return badRequest(reply, body.error);
      await setConcurrency(opts.redis, opts.prefix, q.name, body.data.concurrency);
      return { queue: q.name, concurrency: body.data.concurrency };
    });
  });
}
