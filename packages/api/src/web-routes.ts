import { readFileSync } from "node:fs";
import type { FastifyInstance, FastifyReply } from "fastify";
import { keys, NotFoundError } from "@capflow/common";
import { pipelineStatus, type StatusDeps } from "./status/pipeline-status.ts";
import { ApiProblem } from "./problem.ts";
import { webPages } from "./web-pages.ts";

/**
 * The web page: plain HTML, CSS and ES modules from `web/`, served as they are (no build step; the
 * HTML pages share one layout, web-pages.ts).
 * `/` captions an image, `/pipeline` lists datasets, runs and bulk jobs. Their data comes from /v1
 * routes, so the API key guards it like every other /v1 call; the pages themselves hold no data.
 */
const FILES: Record<string, string> = {
  "app.css": "text/css; charset=utf-8",
  "key.js": "text/javascript; charset=utf-8",
  "caption.js": "text/javascript; charset=utf-8",
  "pipeline.js": "text/javascript; charset=utf-8",
};
const HTML = "text/html; charset=utf-8";

// Scripts and styles only from this origin; images also from blob: (the local preview).
const CSP =
  "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const RUN_ID = /^[\w.-]{1,128}$/;

export function registerWebUi(app: FastifyInstance, deps: StatusDeps): void {
  const body = Object.fromEntries(
    Object.keys(FILES).map((name) => [name, readFileSync(new URL(`./web/${name}`, import.meta.url))]),
  );
  const send = (type: string, content: Buffer | string) => async (_req: unknown, reply: FastifyReply) =>
    reply
      .type(type)
      .header("content-security-policy", CSP)
      .header("x-content-type-options", "nosniff")
      .header("cache-control", "no-cache")
      .send(content);
  for (const page of webPages()) app.get(page.route, send(HTML, page.html));
  app.get<{ Params: { file: string } }>("/ui/:file", async (req, reply) => {
    const name = req.params.file;
    if (!Object.hasOwn(FILES, name)) throw new ApiProblem(404, "not_found", `no file ${name}`);
    return send(FILES[name]!, body[name]!)(req, reply);
  });

  app.get<{ Querystring: { dataset?: string } }>("/v1/status", async (req) => {
    const dataset = req.query.dataset;
    try {
      return await pipelineStatus(deps, dataset || undefined);
    } catch (err) {
      if (dataset && err instanceof NotFoundError)
        throw new ApiProblem(404, "not_found", `no ingested dataset named "${dataset}"`);
      throw err;
    }
  });

  app.get<{ Params: { runId: string } }>("/v1/runs/:runId/report", async (req, reply) => {
    const { runId } = req.params;
    const key = `${keys.runPrefix(runId)}report.html`;
    if (!RUN_ID.test(runId) || !(await deps.store.head(key)))
      throw new ApiProblem(
        404,
        "not_found",
        `no report for run ${runId} (capflow report ${runId} writes one)`,
      );
    return reply.type("text/html; charset=utf-8").send(await deps.store.get(key));
  });
}
