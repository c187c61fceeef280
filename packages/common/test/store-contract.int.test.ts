import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidKeyError, NotFoundError, type ObjectStore } from "@capflow/common";
import { localStore, s3Store } from "../../../test/support/services.ts";

// One contract, two real backends: a local folder and an S3-protocol server on loopback.
const backends: Array<[string, () => Promise<ObjectStore>]> = [
  ["local", localStore],
  ["s3", async () => s3Store()],
];

describe.each(backends)("object store contract: %s", (_name, make) => {
  let store: ObjectStore;
  const ready = make().then((s) => (store = s));
  afterAll(async () => store.close());

  it("round-trips bytes and reports size", async () => {
    await ready;
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    await store.put("a/b/c.bin", bytes);
    expect(await store.get("a/b/c.bin")).toEqual(bytes);
    expect(await store.head("a/b/c.bin")).toEqual({ size: 5 });
  });

  it("overwrites whole objects", async () => {
    await ready;
    await store.put("over/x", "first version, longer");
    await store.put("over/x", "second");
    expect((await store.get("over/x")).toString()).toBe("second");
  });

  it("streams reads", async () => {
    await ready;
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    await store.put("big/blob", big);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.getStream("big/blob")) chunks.push(chunk as Buffer);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
  });

  it("writes a stream larger than a multipart part, and nothing when the stream fails", async () => {
    await ready;
    // 20 MiB made lazily in 1 MiB chunks: above lib-storage's 8 MiB part, so S3 goes multipart.
    const chunk = (i: number) => Buffer.alloc(1024 * 1024, i);
    async function* chunks(n: number, failAt?: number) {
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw new Error("source failed");
        yield chunk(i);
      }
    }
    const expected = createHash("sha256");
    for (let i = 0; i < 20; i++) expected.update(chunk(i));
    await store.putStream("stream/big", chunks(20));
    expect(await store.head("stream/big")).toEqual({ size: 20 * 1024 * 1024 });
    const got = createHash("sha256");
    for await (const c of await store.getStream("stream/big")) got.update(c as Buffer);
    expect(got.digest("hex")).toBe(expected.digest("hex"));
    // s3rver answers the multipart abort with MethodNotAllowed, and that error is the one surfaced.
    await expect(store.putStream("stream/torn", chunks(20, 12))).rejects.toThrow();
    expect(await store.head("stream/torn")).toBeUndefined();
  });

  it("throws NotFoundError for a missing key, head gives undefined", async () => {
    await ready;
    await expect(store.get("missing/key")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.getStream("missing/key")).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.head("missing/key")).toBeUndefined();
  });

  it("lists by prefix, recursively, without neighbours", async () => {
    await ready;
    await store.put("list/one/a", "1");
    await store.put("list/one/b", "22");
    await store.put("list/one/deep/c", "333");
    await store.put("list/onex/d", "4");
    await store.put("list/two/e", "5");
    const keys = async (prefix: string) => {
      const out: string[] = [];
      for await (const o of store.list(prefix)) out.push(o.key);
      return out.sort();
    };
    expect(await keys("list/one/")).toEqual(["list/one/a", "list/one/b", "list/one/deep/c"]);
    expect(await keys("list/one")).toEqual(["list/one/a", "list/one/b", "list/one/deep/c", "list/onex/d"]);
    expect(await keys("list/nothing/")).toEqual([]);
    const sizes: number[] = [];
    for await (const o of store.list("list/one/")) sizes.push(o.size);
    expect(sizes.sort()).toEqual([1, 2, 3]);
  });

  it("creates only once with putIfAbsent", async () => {
    await ready;
    expect(await store.putIfAbsent("once/k", "first")).toBe(true);
    expect(await store.putIfAbsent("once/k", "second")).toBe(false);
    expect((await store.get("once/k")).toString()).toBe("first");
  });

  it("deletes, and deleting a missing key is not an error", async () => {
    await ready;
    await store.put("del/k", "x");
    await store.delete("del/k");
    expect(await store.head("del/k")).toBeUndefined();
    await store.delete("del/k");
  });

  it("refuses keys that could escape", async () => {
    await ready;
    for (const bad of ["../etc/passwd", "/abs", "a/../../b", "a//b", ""]) {
      await expect(store.put(bad, "x"), bad).rejects.toBeInstanceOf(InvalidKeyError);
    }
  });

  it("answers ping", async () => {
    await ready;
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

it("reports s3rver's ignored If-None-Match as best-effort create", async () => {
  const store = s3Store();
  // s3rver accepts a conditional PUT over an existing key, so the probe must not claim atomicity.
  expect(await store.conditionalCreate()).toBe("best-effort");
  expect(await (await localStore()).conditionalCreate()).toBe("atomic");
  await store.close();
});
