import type { FastifyInstance } from "fastify";

/** A route as the OpenAPI document names it: lower-case method, `{param}` path. */
export interface RegisteredRoute {
  method: string;
  path: string;
}

const tables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** `/v1/captions/:id` → `/v1/captions/{id}` */
export const openApiPath = (url: string): string => url.replace(/:(\w+)/g, "{$1}");

/**
 * Records every route registered on `app` from now on, in any plugin scope (an onRoute hook on the
 * root is inherited by the scopes registered after it). Fastify keeps no public list of its routes.
 * HEAD routes are Fastify's automatic twins of GET routes and are left out.
 */
export function trackRoutes(app: FastifyInstance): void {
  const table: RegisteredRoute[] = [];
  tables.set(app, table);
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      if (method !== "HEAD") table.push({ method: method.toLowerCase(), path: openApiPath(route.url) });
  });
}

/** The routes recorded on `app` (empty if trackRoutes was not called on it). */
export function registeredRoutes(app: FastifyInstance): RegisteredRoute[] {
  return [...(tables.get(app) ?? [])];
}
