import Fastify, { type FastifyInstance } from "fastify";
import { registry } from "./metrics.ts";

export type Check = () => Promise<void>;

export interface OpsServerOptions {
  host: string;
  port: number;
  /** Readiness: each named dependency must answer (Redis, store). */
  readiness: Record<string, Check>;
  /**
   * Liveness: fails when the process is up but not doing its job (jobs waiting and none completed
   * for too long), the failure "Redis answers PING" cannot see.
   */
  liveness?: Check;
}

async function runChecks(
  checks: Record<string, Check>,
): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), 2_000, name);
        return [name, "ok"] as const;
      } catch (err) {
        return [name, (err as Error).message] as const;
      }
    }),
  );
  return { ok: results.every(([, r]) => r === "ok"), checks: Object.fromEntries(results) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * Adds `/healthz`, `/readyz` and `/metrics` to an existing Fastify app (the HTTP API serves them on
 * its own port instead of a second server).
 */
export function registerOpsRoutes(
  app: FastifyInstance,
  opts: Pick<OpsServerOptions, "readiness" | "liveness">,
): void {
  app.get("/healthz", async (_req, reply) => {
    const result = await runChecks(opts.liveness ? { liveness: opts.liveness } : {});
    return reply.code(result.ok ? 200 : 503).send(result);
  });
  app.get("/readyz", async (_req, reply) => {
    const result = await runChecks(opts.readiness);
    return reply.code(result.ok ? 200 : 503).send(result);
  });
  app.get("/metrics", async (_req, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

/** `/healthz`, `/readyz` and `/metrics` for every long-running process. */
export async function startOpsServer(opts: OpsServerOptions): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  registerOpsRoutes(app, opts);
  const address = await app.listen({ host: opts.host, port: opts.port });
  return { app, url: address };
}
