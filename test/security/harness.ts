import { afterEach, beforeEach } from "vitest";
import pino from "pino";
import { createQueue, createRedis, QUEUE_NAMES, type ObjectStore } from "@capflow/common";
import { buildApiServer, registerAdmin, type ApiConfig } from "@capflow/api";
import { freshPrefix, localStore, redisUrl } from "../support/services.ts";

export const silent = pino({ level: "silent" });

export function apiConfig(over: Partial<ApiConfig> = {}): ApiConfig {
  return {
    maxBodyBytes: 1024 * 1024,
    waitMs: 0,
    maxQueueDepth: 100_000,
    urlFetch: { maxBytes: 1024 * 1024, timeoutMs: 2_000, allowPrivate: false },
    ...over,
  };
}

/** One API server (with /admin) on a fresh prefix and local store, closed after each test. */
export function apiHarness() {
  const h = {} as {
    store: ObjectStore;
    prefix: string;
    conn: ReturnType<typeof createRedis>;
    app: Awaited<ReturnType<typeof buildApiServer>>;
    start(over?: Partial<ApiConfig>): Promise<void>;
  };
  beforeEach(async () => {
    h.store = await localStore();
    h.prefix = freshPrefix();
    h.conn = createRedis(redisUrl(), "producer");
  });
  h.start = async (over = {}) => {
    const config = apiConfig(over);
    h.app = await buildApiServer({ store: h.store, redis: h.conn, prefix: h.prefix, log: silent, config });
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
    for (const name of QUEUE_NAMES) {
      const q = createQueue(name, { connection: h.conn, prefix: h.prefix });
      await q.obliterate({ force: true });
      await q.close();
    }
    h.conn.disconnect();
    h.app = undefined as never;
  });
  return h;
}
