import { describe, expect, it } from "vitest";
import {
  checkRedisSettings,
  describeRedis,
  hasHashTag,
  parseRedisNode,
  RedisUrlList,
  type RedisSettings,
} from "./redis-config.ts";

describe("parseRedisNode", () => {
  it("defaults the port to 6379 and the database to 0, without TLS or credentials", () => {
    expect(parseRedisNode("redis://redis.capflow.svc")).toEqual({
      host: "redis.capflow.svc",
      port: 6379,
      tls: false,
      username: undefined,
      password: undefined,
      db: 0,
    });
  });

  it("reads a password-only URL (requirepass) and a port", () => {
    expect(parseRedisNode("redis://:s3cret@10.0.0.5:6380")).toMatchObject({
      host: "10.0.0.5",
      port: 6380,
      username: undefined,
      password: "s3cret",
    });
  });

  it("reads an ACL user and decodes percent-encoded credentials and the database number", () => {
    expect(parseRedisNode("redis://capflow:p%40ss%3Aword@redis.internal:6379/2")).toMatchObject({
      username: "capflow",
      password: "p@ss:word",
      db: 2,
    });
  });

  it("turns TLS on for rediss://", () => {
    expect(parseRedisNode("rediss://managed.example.com:6380")).toMatchObject({
      host: "managed.example.com",
      port: 6380,
      tls: true,
    });
  });

  it("strips the brackets of an IPv6 host", () => {
    expect(parseRedisNode("redis://[::1]:7001")).toMatchObject({ host: "::1", port: 7001 });
  });
});

describe("RedisUrlList", () => {
  it("splits a comma-separated list of seed nodes or sentinels, trimming blanks", () => {
    expect(RedisUrlList.parse(" redis://a:7000, redis://b:7001 ,,rediss://c:7002")).toEqual([
      "redis://a:7000",
      "redis://b:7001",
      "rediss://c:7002",
    ]);
  });

  it("refuses anything but redis:// and rediss:// URLs, and an empty list", () => {
    const bad = RedisUrlList.safeParse("redis://a:7000,http://b:7001");
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toBe("each entry must be a redis:// or rediss:// URL");
    expect(RedisUrlList.safeParse("a:6379").success).toBe(false);
    const empty = RedisUrlList.safeParse(" , ");
    expect(empty.success).toBe(false);
    expect(empty.error?.issues[0]?.message).toBe("must name at least one redis:// or rediss:// URL");
  });
});

describe("checkRedisSettings", () => {
  const settings = (s: Partial<RedisSettings>): RedisSettings => ({
    mode: "standalone",
    urls: ["redis://r:6379"],
    ...s,
  });

  it("accepts one standalone URL with any prefix", () => {
    expect(checkRedisSettings(settings({}), "capflow")).toEqual([]);
  });

  it("refuses a list of URLs in standalone mode, naming the variable", () => {
    const problems = checkRedisSettings(settings({ urls: ["redis://a:1", "redis://b:2"] }), "capflow");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^CAPFLOW_REDIS_URL: standalone mode takes one URL/);
  });

  it("needs the primary's name in sentinel mode", () => {
    const urls = ["redis://s1:26379", "redis://s2:26379"];
    expect(checkRedisSettings(settings({ mode: "sentinel", urls }), "capflow")[0]).toMatch(
      /^CAPFLOW_REDIS_SENTINEL_NAME:/,
    );
    expect(
      checkRedisSettings(settings({ mode: "sentinel", urls, sentinelName: "mymaster" }), "capflow"),
    ).toEqual([]);
  });

  it("needs a hash-tag prefix on a cluster, and suggests one", () => {
    const urls = ["redis://n1:7000", "redis://n2:7001", "redis://n3:7002"];
    const problems = checkRedisSettings(settings({ mode: "cluster", urls }), "capflow");
    expect(problems).toEqual([
      'CAPFLOW_QUEUE_PREFIX: "capflow" has no hash tag; on a Redis Cluster use e.g. {capflow} so each queue\'s keys share one slot',
    ]);
    expect(checkRedisSettings(settings({ mode: "cluster", urls }), "{capflow}")).toEqual([]);
  });
});

describe("hasHashTag", () => {
  it("follows Redis Cluster's rule: the first { with a non-empty tag before the next }", () => {
    expect(hasHashTag("{capflow}")).toBe(true);
    expect(hasHashTag("prod:{capflow}")).toBe(true);
    expect(hasHashTag("capflow")).toBe(false);
    expect(hasHashTag("{}capflow")).toBe(false);
    expect(hasHashTag("{capflow")).toBe(false);
    expect(hasHashTag("capflow}")).toBe(false);
  });
});

describe("describeRedis", () => {
  it("names mode, hosts and the primary, and never a credential", () => {
    const text = describeRedis({
      mode: "sentinel",
      urls: ["redis://sentinel-user:sentinel-pass@s1:26379", "rediss://s2:26380"],
      sentinelName: "mymaster",
      password: "primary-pass",
    });
    expect(text).toBe('sentinel redis://s1:26379,rediss://s2:26380 (primary "mymaster") with auth');
    expect(text).not.toMatch(/pass|sentinel-user/);
    expect(describeRedis({ mode: "standalone", urls: ["redis://r:6379"] })).toBe("standalone redis://r:6379");
  });
});
