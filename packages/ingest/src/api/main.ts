import { startRuntime } from "@capflow/common";
import { ApiEnv, apiConfigFrom } from "./api-env.ts";
import { buildApiServer } from "./server.ts";

/** `capflow api`: the HTTP API process, until SIGINT/SIGTERM. */
export async function apiMain(): Promise<void> {
  const rt = await startRuntime("api", ApiEnv);
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
  const url = await app.listen({ host: rt.env.CAPFLOW_API_HOST, port: rt.env.CAPFLOW_API_PORT });
  rt.log.info({ url, auth: Boolean(rt.env.CAPFLOW_API_KEY) }, "api listening");
}
