import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Redis } from "ioredis";
// ioredis's own URL parser: proves each form below is one ioredis really reads a password from.
import { parseURL } from "ioredis/built/utils/index.js";
import { createRedis, redactEnv, redactUrl, resolveRedis } from "@capflow/common";
import { tempDir } from "../support/services.ts";

const SECRET = "s3cr3t-P4ss";

// [form, the URL, the password ioredis reads from it (undefined: ioredis refuses the URL)]
const FORMS: Array<[string, string, string | undefined]> = [
  ["password only", `redis://:${SECRET}@db.internal:6379`, SECRET],
  ["user and password, db", `redis://app:${SECRET}@db.internal:6379/2`, SECRET],
  ["TLS", `rediss://app:${SECRET}@db.internal:6380`, SECRET],
  ["password with @", `redis://:${SECRET}@x@db.internal:6379`, `${SECRET}@x`],
  ["password with encoded /", `redis://:${SECRET}%2Fx@db.internal:6379`, `${SECRET}/x`],
  ["password with raw /", `redis://:${SECRET}/x@db.internal:6379`, undefined],
  ["password in the query", `redis://db.internal:6379?password=${SECRET}`, SECRET],
  ["query with db and family", `redis://db.internal:6379/0?db=1&password=${SECRET}&family=6`, SECRET],
  ["protocol-relative", `//:${SECRET}@db.internal:6379`, SECRET],
  ["bare host:port", `:${SECRET}@db.internal:6379`, SECRET],
  ["unix socket", `/run/redis.sock?password=${SECRET}`, SECRET],
  ["sentinel password", `redis://db.internal:26379?sentinelPassword=${SECRET}`, SECRET],
];

function ioredisPassword(url: string): string | undefined {
  try {
    const o = parseURL(url) as { password?: string; sentinelPassword?: string };
    return o.password || o.sentinelPassword;
  } catch {
    return undefined;
  }
}

describe("security: secrets (finding 7)", () => {
  it.each(FORMS)("finding 7: redacts the password of the %s form", (_form, url, password) => {
    expect(ioredisPassword(url)).toBe(password);
    const out = redactUrl(url);
    expect(out).not.toContain(SECRET);
    expect(out).toContain("[redacted]");
    expect(out).toMatch(/db\.internal|redis\.sock/);
    expect(JSON.stringify(redactEnv({ CAPFLOW_REDIS_URL: url }))).not.toContain(SECRET);
  });

  it("finding 7: leaves URLs without secrets alone", () => {
    expect(redactUrl("redis://db.internal:6379/0?family=6")).toBe("redis://db.internal:6379/0?family=6");
    expect(redactUrl("http://127.0.0.1:9000")).toBe("http://127.0.0.1:9000");
  });

  it("finding 7: capflow's embedded Redis refuses clients without its generated password", async () => {
    const home = await tempDir("home");
    const endpoint = await resolveRedis(undefined, home);
    try {
      const password = ioredisPassword(endpoint.url);
      expect(password).toMatch(/^[0-9a-f]{48}$/);
      // Raw on purpose: a client capflow never builds (no password, no retries), disconnected below.
      // eslint-disable-next-line no-restricted-syntax
      const bare = new Redis(endpoint.url.replace(/\/\/:[^@]*@/, "//"), {
        lazyConnect: true,
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      const errors: string[] = [];
      bare.on("error", (err: Error) => errors.push(err.message));
      await expect(bare.connect().then(() => bare.ping())).rejects.toThrow();
      expect(errors.join("\n")).toMatch(/NOAUTH/);
      bare.disconnect();
      const authed = createRedis(endpoint.url, "worker");
      expect(await authed.ping()).toBe("PONG");
      authed.disconnect();
      const mode = (await fs.stat(path.join(home, "redis", "redis.url"))).mode & 0o777;
      expect(mode).toBe(0o600);
      expect(redactUrl(endpoint.url)).not.toContain(password!);
    } finally {
      await endpoint.owned?.stop();
    }
  });
});
