import Fastify, { type FastifyInstance } from "fastify";
import { registerAdmin, type AdminOptions } from "./register-admin.ts";

/**
 * The admin plugin on a server of its own (an operator's port-forward, tests). The API server
 * mounts `registerAdmin` on its own app instead.
 */
export async function startAdminServer(
  opts: AdminOptions & { host?: string; port?: number },
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  await registerAdmin(app, opts);
  const url = await app.listen({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0 });
  return { app, url };
}
