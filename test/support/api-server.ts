import { afterEach, beforeEach } from "vitest";
import pino from "pino";
import {
  createQueue,
  createRedis,
  QUEUE_NAMES,
  type ObjectStore,
  type QueueName,
  type RedisClient,
} from "@capflow/common";
import { buildApiServer, registerAdmin, type ApiConfig } from "@capflow/api";
import { freshPrefix, localStore, redisUrl } from "./services.ts";

export const silent = pino({ level: "silent" });

type ApiServer = Awaited<ReturnType<typeof buildApiServer>>;
type ApiServerOptions = Parameters<typeof buildApiServer>[0];

/** The API's settings for a test: 1 MiB bodies, no waiting, public URLs only; `over` replaces any. */
export function apiConfig(over: Partial<ApiConfig> = {}): ApiConfig {
  return {
    maxBodyBytes: 1024 * 1024,
    waitMs: 0,
    maxQueueDepth: 1000,
    urlFetch: { maxBytes: 1024 * 1024, timeoutMs: 2_000, allowPrivate: false },
    ...over,
  };
}

/** POST /v1/captions with raw image bytes, as a client uploading a file does. */
export function postImage(app: ApiServer, payload: Buffer, headers: Record<string, string> = {}) {
  return app.inject({
    method: "POST",
    url: "/v1/captions",
    headers: { "content-type": "image/png", ...headers },
    payload,
  });
}

/** Obliterates and closes the named queues under `prefix`: what a test leaves on the shared Redis. */
export async function dropQueues(
  connection: RedisClient,
  prefix: string,
  names: readonly QueueName[] = QUEUE_NAMES,
): Promise<void> {
  for (const name of names) {
    const q = createQueue(name, { connection, prefix });
    await q.obliterate({ force: true });
    await q.close();
  }
}

/**
 * One API server per test on a fresh prefix, local store and producer connection, closed (its queues
 * dropped) after each test. `admin` (default on) also mounts /admin; `config` changes the defaults
 * every `start` builds on.
 */
export function apiHarness({
  admin = true,
  config: defaults = {},
}: { admin?: boolean; config?: Partial<ApiConfig> } = {}) {
  const h = {} as {
    store: ObjectStore;
    prefix: string;
    conn: ReturnType<typeof createRedis>;
    app: ApiServer;
    start(over?: Partial<ApiConfig>, extra?: Partial<ApiServerOptions>): Promise<void>;
  };
  beforeEach(async () => {
    h.store = await localStore();
    h.prefix = freshPrefix();
    h.conn = createRedis(redisUrl(), "producer");
  });
  h.start = async (over = {}, extra = {}) => {
    const config = apiConfig({ ...defaults, ...over });
    h.app = await buildApiServer({
      store: h.store,
      redis: h.conn,
      prefix: h.prefix,
      log: silent,
      config,
      ...extra,
    });
    if (!admin) return;
    const queues = QUEUE_NAMES.map((name) => createQueue(name, { connection: h.conn, prefix: h.prefix }));
    h.app.addHook("onClose", async () => {
      await Promise.all(queues.map((q) => q.close()));
    });
    await registerAdmin(h.app, {
      queues,
      redis: h.conn,
      prefix: h.prefix,
      adminKey: config.adminKey,
      apiKey: config.apiKey,
    });
  };
  afterEach(async () => {
    await h.app?.close();
    await dropQueues(h.conn, h.prefix);
    h.conn.disconnect();
    h.app = undefined as never;
  });
  return h;
}
