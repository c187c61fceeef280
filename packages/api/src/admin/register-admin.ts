import { timingSafeEqual } from "node:crypto";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { Queue } from "bullmq";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import { z } from "zod";
import {
  CLEANABLE_STATES,
  cleanJobs,
  listFailed,
  pauseQueue,
  queueStats,
  resumeQueue,
  retryFailed,
  setConcurrency,
} from "@capflow/common";

export interface AdminOptions {
  queues: Queue[];
  /** The producer connection and queue prefix, for the concurrency keys. */
  redis: Redis;
  prefix: string;
  /** CAPFLOW_ADMIN_KEY. Without it the board is read-only and every mutating route answers 403. */
  adminKey?: string;
  /** Read-only board even with a key (mutating /admin/api routes still work with the key). */
  readOnly?: boolean;
}

export const ADMIN_KEY_HEADER = "x-capflow-admin-key";
export const ADMIN_KEY_COOKIE = "capflow_admin_key";

function presentedKey(req: FastifyRequest): string | undefined {
  const header = req.headers[ADMIN_KEY_HEADER];
  if (typeof header === "string") return header;
  const auth = req.headers.authorization;
  if (auth?.startsWith("Bearer ")) return auth.slice(7);
  const cookie = req.headers.cookie
    ?.split(";")
    .map((c) => c.trim())
    .find((c) => c.startsWith(`${ADMIN_KEY_COOKIE}=`));
  return cookie ? decodeURIComponent(cookie.slice(ADMIN_KEY_COOKIE.length + 1)) : undefined;
}

function keyMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

const CleanBody = z.object({
  state: z.enum(CLEANABLE_STATES).default("completed"),
  olderThanMs: z
    .number()
    .int()
    .min(0)
    .default(24 * 3600 * 1000),
  limit: z.number().int().min(0).max(100_000).default(0),
});
const ConcurrencyBody = z.object({ concurrency: z.number().int().min(1).max(1024).nullable() });
const FailedQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

/**
 * Queue administration for the API server: bull-board at `/admin/queues` and JSON routes under
 * `/admin/api/queues/...` (stats, failed, pause, resume, retry-failed, clean, concurrency).
 *
 * Access: with no admin key configured the board is read-only and the JSON routes only read; with
 * `CAPFLOW_ADMIN_KEY` set, everything under `/admin` needs the key (header `x-capflow-admin-key`,
 * `Authorization: Bearer`, or cookie `capflow_admin_key` for browsers).
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
      if (opts.adminKey && !keyMatches(opts.adminKey, presentedKey(req))) {
        return reply.code(401).send({ error: "admin key required" });
      }
      const mutating = req.method !== "GET" && req.method !== "HEAD";
      if (mutating && !opts.adminKey) {
        return reply.code(403).send({ error: "read-only: set CAPFLOW_ADMIN_KEY to allow queue changes" });
      }
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
