import { describe, expect } from "vitest";
import pino from "pino";
import { buildApiServer, registerAdmin, registerWebUi } from "@capflow/api";
import { QUEUE_NAMES, type QueueName, type TypedQueue } from "@capflow/common";
import { registeredRoutes } from "../src/route-table.ts";
import { UNDOCUMENTED } from "../src/openapi.ts";
import { localStore } from "../../../test/support/services.ts";
import { queueTest } from "../../../test/support/queue-fixture.ts";

type Doc = { paths: Record<string, Record<string, unknown>> };

/**
 * Every route a server registers is in the OpenAPI document it serves, and nothing else is: the
 * route list comes from the server itself (an onRoute hook), not from a list kept by hand.
 */
describe("the OpenAPI document", () => {
  queueTest(
    "lists every route the API process registers (API, web page, admin), and only those",
    async ({ queues }) => {
      const store = await localStore();
      const app = await buildApiServer({
        store,
        redis: queues.producer,
        prefix: queues.prefix,
        log: pino({ level: "silent" }),
        config: {
          maxBodyBytes: 1024 * 1024,
          waitMs: 0,
          maxQueueDepth: 1000,
          urlFetch: { maxBytes: 1024, timeoutMs: 1000, allowPrivate: false },
          apiKey: "openapi-test-key-0123456789",
        },
      });
      queues.track(app);
      // What the API process adds beside buildApiServer (main.ts).
      const byName = Object.fromEntries(QUEUE_NAMES.map((n) => [n, queues.queue(n)])) as {
        [Q in QueueName]: TypedQueue<Q>;
      };
      await registerAdmin(app, {
        queues: Object.values(byName),
        redis: queues.producer,
        prefix: queues.prefix,
        apiKey: "openapi-test-key-0123456789",
      });
      registerWebUi(app, { store, redis: queues.producer, queues: byName });
      await app.ready();

      const routes = registeredRoutes(app).filter((r) => !UNDOCUMENTED.test(r.path));
      const res = await app.inject({ method: "GET", url: "/openapi.json" });
      expect(res.statusCode).toBe(200);
      const doc = res.json<Doc>();
      const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method} ${path}`),
      );
      const served = routes.map((r) => `${r.method} ${r.path}`);
      expect(served).toEqual(expect.arrayContaining(["get /v1/status", "get /v1/runs/{runId}/report"]));
      expect(served.length).toBeGreaterThan(20);
      expect([...new Set(documented)].sort()).toEqual([...new Set(served)].sort());
      // bull-board's routes are registered but left out on purpose.
      expect(registeredRoutes(app).some((r) => UNDOCUMENTED.test(r.path))).toBe(true);
    },
  );

  queueTest("leaves out what a bare server (no web page, no admin) does not serve", async ({ queues }) => {
    const app = await buildApiServer({
      store: await localStore(),
      redis: queues.producer,
      prefix: queues.prefix,
      log: pino({ level: "silent" }),
      config: {
        maxBodyBytes: 1024,
        waitMs: 0,
        maxQueueDepth: 10,
        urlFetch: { maxBytes: 1024, timeoutMs: 1000, allowPrivate: false },
      },
    });
    queues.track(app);
    const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json<Doc>();
    expect(doc.paths["/v1/captions"]).toBeDefined();
    expect(doc.paths["/v1/status"]).toBeUndefined();
    expect(doc.paths["/admin/api/queues"]).toBeUndefined();
  });
});
