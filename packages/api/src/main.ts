import {
  createQueue,
  QUEUE_NAMES,
  registerQueueDepthMetrics,
  setBuildInfo,
  startRuntime,
} from "@capflow/common";
import { AdminEnv } from "./admin/admin-env.ts";
import { registerAdmin } from "./admin/register-admin.ts";
import { ApiEnv, apiConfigFrom } from "./api-env.ts";
import { buildApiServer } from "./server.ts";

/** `capflow api`: the HTTP API process, until SIGINT/SIGTERM. */
export async function apiMain(): Promise<void> {
  const rt = await startRuntime("api", ApiEnv.extend(AdminEnv.shape));
  const app = await buildApiServer({
    store: rt.store,
    redis: rt.redis,
    prefix: rt.prefix,
    log: rt.log,
    config: apiConfigFrom(rt.env),
  });
  // Registered after the runtime's closers: shutdown runs in reverse, so the server stops taking
  // requests (and lets in-flight ones finish) before Redis and the store close.
  rt.shutdown.add("api server", () => app.close());
  // The API is where operators look: bull-board and the admin routes, and every queue's depth.
  const queues = QUEUE_NAMES.map((name) => createQueue(name, { connection: rt.redis, prefix: rt.prefix }));
  registerQueueDepthMetrics(queues);
  await registerAdmin(app, {
    queues,
    redis: rt.redis,
    prefix: rt.prefix,
    adminKey: rt.env.CAPFLOW_ADMIN_KEY,
  });
  app.addHook("onClose", async () => {
    await Promise.all(queues.map((q) => q.close()));
  });
  setBuildInfo({ runtime: "none", backend: "none", encoder: "none" });
  const url = await app.listen({ host: rt.env.CAPFLOW_API_HOST, port: rt.env.CAPFLOW_API_PORT });
  rt.log.info({ url, auth: Boolean(rt.env.CAPFLOW_API_KEY) }, "api listening");
}
