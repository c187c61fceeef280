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
import { startSweeper } from "./retention.ts";
import { buildApiServer } from "./server.ts";
import { registerWebUi } from "./web-routes.ts";

/** `capflow api`: the HTTP API process, until SIGINT/SIGTERM. */
export async function apiMain(): Promise<void> {
  const rt = await startRuntime("api", ApiEnv.extend(AdminEnv.shape));
  const app = await buildApiServer({
    store: rt.store,
    redis: rt.redis,
    prefix: rt.prefix,
    log: rt.log,
    config: { ...apiConfigFrom(rt.env), adminKey: rt.env.CAPFLOW_ADMIN_KEY },
  });
  const hour = 3_600_000;
  const stopSweeper = startSweeper(
    rt.store,
    {
      uploadTtlMs: rt.env.CAPFLOW_UPLOAD_TTL_HOURS * hour,
      batchTtlMs: rt.env.CAPFLOW_CAPTION_BATCH_TTL_HOURS * hour,
    },
    rt.env.CAPFLOW_SWEEP_INTERVAL_SECONDS * 1000,
    rt.log,
  );
  rt.shutdown.add("retention sweeper", async () => stopSweeper());
  // Registered after the runtime's closers: shutdown runs in reverse, so the server stops taking
  // requests (and lets in-flight ones finish) before Redis and the store close.
  rt.shutdown.add("api server", () => app.close());
  // The API is where operators look: bull-board and the admin routes, and every queue's depth.
  const ctx = { connection: rt.redis, prefix: rt.prefix };
  const byName = {
    features: createQueue("features", ctx),
    training: createQueue("training", ctx),
    captions: createQueue("captions", ctx),
    "caption-bulk": createQueue("caption-bulk", ctx),
    ingest: createQueue("ingest", ctx),
  } satisfies Record<(typeof QUEUE_NAMES)[number], unknown>;
  const queues = Object.values(byName);
  registerQueueDepthMetrics(queues);
  await registerAdmin(app, {
    queues,
    redis: rt.redis,
    prefix: rt.prefix,
    adminKey: rt.env.CAPFLOW_ADMIN_KEY,
    apiKey: rt.env.CAPFLOW_API_KEY,
  });
  // The web page (/ and /pipeline) and the /v1 routes it reads.
  registerWebUi(app, { store: rt.store, redis: rt.redis, queues: byName });
  app.addHook("onClose", async () => {
    await Promise.all(queues.map((q) => q.close()));
  });
  setBuildInfo({ runtime: "none", backend: "none", encoder: "none" });
  const url = await app.listen({ host: rt.env.CAPFLOW_API_HOST, port: rt.env.CAPFLOW_API_PORT });
  rt.log.info({ url, auth: Boolean(rt.env.CAPFLOW_API_KEY) }, "api listening");
}
