import { timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";

/**
 * Who may call what on the API's port: one policy for /v1, /metrics and /admin (docs/security.md has
 * the table). Two credentials:
 *
 * - the API key (CAPFLOW_API_KEY), for clients: `x-api-key` or `Authorization: Bearer`;
 * - the admin key (CAPFLOW_ADMIN_KEY), for operators: `x-capflow-admin-key`, `Authorization: Bearer`
 *   or the `capflow_admin_key` cookie (browsers on the queue board).
 *
 * With no key at all (a laptop, `capflow up`) everything is open except admin changes. Once any key
 * is set, nothing but health, readiness and the OpenAPI document is open. An API key without an admin
 * key closes /admin entirely rather than refusing to start: /admin reads showed every job's data (image
 * keys, other users' captions) and Redis's version and memory to anyone while /v1 was locked, and a
 * deployment that only meant to lock its API should keep serving captions, not crash-loop on a missing
 * variable. The 403 names the variable that opens it.
 *
 * Admin changes authenticated by the cookie must come from the board's own origin: a cross-origin
 * `text/plain` POST carries the cookie (a "simple" request needs no CORS preflight) and paused a queue.
 * A key sent in a header cannot be set by another origin's page, so header-authenticated calls (curl,
 * scripts) need no Origin.
 */
export interface AccessKeys {
  apiKey?: string;
  adminKey?: string;
}

export type Area = "public" | "v1" | "metrics" | "admin";

export interface Refusal {
  status: 401 | 403;
  code: "unauthorized" | "forbidden";
  message: string;
  headers?: Record<string, string>;
}

export const ADMIN_KEY_HEADER = "x-capflow-admin-key";
export const ADMIN_KEY_COOKIE = "capflow_admin_key";

/** Which area a request falls in, by its raw path (case-folded: `/V1/...` and `/Admin` count too). */
export function areaOf(url: string): Area {
  const path = url.split("?")[0]!.toLowerCase();
  const under = (p: string) => path === p || path.startsWith(`${p}/`);
  if (under("/v1")) return "v1";
  if (under("/admin")) return "admin";
  if (under("/metrics")) return "metrics";
  return "public";
}

function matches(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bearer(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  return auth && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, "") : undefined;
}

function apiKeyGiven(req: FastifyRequest): string | undefined {
  const header = req.headers["x-api-key"];
  return typeof header === "string" ? header : bearer(req);
}

/** The admin key presented, and whether it came from the cookie (which a browser sends on its own). */
function adminKeyGiven(req: FastifyRequest): { key?: string; fromCookie: boolean } {
  const header = req.headers[ADMIN_KEY_HEADER];
  if (typeof header === "string") return { key: header, fromCookie: false };
  const b = bearer(req);
  if (b !== undefined) return { key: b, fromCookie: false };
  const cookie = req.headers.cookie
    ?.split(";")
    .map((c) => c.trim())
    .find((c) => c.startsWith(`${ADMIN_KEY_COOKIE}=`));
  if (!cookie) return { fromCookie: false };
  try {
    return { key: decodeURIComponent(cookie.slice(ADMIN_KEY_COOKIE.length + 1)), fromCookie: true };
  } catch {
    return { fromCookie: true };
  }
}

/** True when the request says it comes from another site (Origin's host differs from Host). */
export function crossOrigin(req: FastifyRequest): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") return true;
  const origin = req.headers.origin ?? req.headers.referer;
  if (!origin) return site !== "same-origin";
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

const unauthorized = (message: string): Refusal => ({
  status: 401,
  code: "unauthorized",
  message,
  headers: { "www-authenticate": "Bearer" },
});

/** undefined when the request may go on, else why not. */
export function checkAccess(req: FastifyRequest, keys: AccessKeys): Refusal | undefined {
  const area = areaOf(req.url);
  const anyKey = keys.apiKey !== undefined || keys.adminKey !== undefined;
  switch (area) {
    case "public":
      return undefined;
    case "v1":
      if (keys.apiKey === undefined || matches(keys.apiKey, apiKeyGiven(req))) return undefined;
      return unauthorized("send the API key as x-api-key or authorization: Bearer");
    case "metrics":
      if (!anyKey) return undefined;
      if (matches(keys.adminKey, adminKeyGiven(req).key) || matches(keys.apiKey, apiKeyGiven(req)))
        return undefined;
      return unauthorized("send the admin key (or the API key) as authorization: Bearer");
    case "admin": {
      const mutating = req.method !== "GET" && req.method !== "HEAD";
      if (keys.adminKey === undefined) {
        if (keys.apiKey !== undefined)
          return {
            status: 403,
            code: "forbidden",
            message: "/admin is closed while CAPFLOW_API_KEY is set without CAPFLOW_ADMIN_KEY",
          };
        if (mutating)
          return {
            status: 403,
            code: "forbidden",
            message: "read-only: set CAPFLOW_ADMIN_KEY to allow queue changes",
          };
        return undefined;
      }
      const given = adminKeyGiven(req);
      if (!matches(keys.adminKey, given.key)) return unauthorized("admin key required");
      if (mutating && given.fromCookie && crossOrigin(req))
        return {
          status: 403,
          code: "forbidden",
          message: "admin changes authenticated by cookie must come from this server's own pages",
        };
      return undefined;
    }
  }
}
