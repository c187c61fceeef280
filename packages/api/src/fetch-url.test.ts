import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchUrl, FetchUrlError, isRefusedAddress, mappedV4 } from "./fetch-url.ts";

const opts = { maxBytes: 1024, timeoutMs: 2_000 };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof FetchUrlError) return err.code;
    throw err;
  }
}

describe("isRefusedAddress", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.1.2.3", "private 10/8"],
    ["172.16.0.1", "private 172.16/12"],
    ["172.31.255.255", "private 172.16/12"],
    ["192.168.1.1", "private 192.168/16"],
    ["100.64.0.1", "CGNAT"],
    ["169.254.169.254", "cloud metadata"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["198.18.0.1", "benchmarking"],
    ["::1", "v6 loopback"],
    ["::", "v6 unspecified"],
    ["fc00::1", "unique local"],
    ["fd12:3456::1", "unique local"],
    ["fe80::1", "link-local"],
    ["ff02::1", "v6 multicast"],
    ["::ffff:127.0.0.1", "mapped loopback"],
    ["::ffff:7f00:1", "mapped loopback, hex"],
    ["::ffff:a9fe:a9fe", "mapped metadata"],
    ["0:0:0:0:0:ffff:10.0.0.1", "mapped private, long form"],
    ["64:ff9b::a9fe:a9fe", "NAT64"],
    ["2002:7f00:1::", "6to4"],
    ["not-an-ip", "not an address"],
  ])("refuses %s (%s)", (address) => {
    expect(isRefusedAddress(address)).toBe(true);
  });

  it.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])(
    "allows public %s",
    (address) => {
      expect(isRefusedAddress(address)).toBe(false);
    },
  );

  it("reads the IPv4 part of mapped addresses in both spellings", () => {
    expect(mappedV4("::ffff:7f00:1")).toBe("127.0.0.1");
    expect(mappedV4("::FFFF:192.168.0.1")).toBe("192.168.0.1");
    expect(mappedV4("2001:db8::1")).toBeUndefined();
  });
});

describe("fetchUrl refuses before connecting", () => {
  it.each([
    "http://127.0.0.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://10.0.0.1/",
    "http://192.168.0.1:8080/",
    "http://0.0.0.0/",
    "http://100.64.1.1/",
  ])("%s → refused_address", async (url) => {
    expect(await codeOf(fetchUrl(url, opts))).toBe("refused_address");
  });

  it.each([
    "file:///etc/passwd",
    "gopher://example.com/",
    "ftp://example.com/x.png",
    "not a url",
    "http://user:pw@example.com/",
  ])("%s → bad_url", async (url) => {
    expect(await codeOf(fetchUrl(url, opts))).toBe("bad_url");
  });

  it("refuses a name when any of its addresses is private (one public, one metadata)", async () => {
    const resolve = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "169.254.169.254", family: 4 },
    ];
    expect(await codeOf(fetchUrl("http://rebind.example/", { ...opts, resolve }))).toBe("refused_address");
  });
});

describe("fetchUrl against a loopback server", () => {
  let server: http.Server;
  let base: string;
  let resolved = 0;
  const onlyLoopback127 = (a: string) => a === "127.0.0.1";

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, "http://x");
      switch (url.pathname) {
        case "/ok":
          res.writeHead(200, { "content-type": "image/png" }).end(Buffer.alloc(100, 1));
          return;
        case "/big":
          res.writeHead(200, { "content-type": "image/png" }).end(Buffer.alloc(5000, 1));
          return;
        case "/big-chunked":
          res.writeHead(200, { "content-type": "image/png" });
          for (let i = 0; i < 10; i++) res.write(Buffer.alloc(500, 1));
          res.end();
          return;
        case "/slow":
          res.writeHead(200);
          res.write("a");
          return; // never ends
        case "/missing":
          res.writeHead(404).end();
          return;
        case "/redirect":
          res.writeHead(302, { location: url.searchParams.get("to")! }).end();
          return;
        case "/loop":
          res.writeHead(302, { location: "/loop" }).end();
          return;
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("fetches bytes from an allowed address", async () => {
    const got = await fetchUrl(`${base}/ok`, { ...opts, isAllowed: onlyLoopback127 });
    expect(got.bytes.length).toBe(100);
    expect(got.contentType).toBe("image/png");
  });

  it("connects to the vetted address, not to a second DNS answer", async () => {
    const port = (server.address() as AddressInfo).port;
    // The name resolves once to the allowed address; a rebinding resolver would answer differently
    // the second time, but fetchUrl never asks twice.
    const resolve = async () => {
      resolved++;
      return resolved === 1 ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "10.0.0.1", family: 4 }];
    };
    const got = await fetchUrl(`http://rebinding.test:${port}/ok`, {
      ...opts,
      isAllowed: onlyLoopback127,
      resolve,
    });
    expect(got.bytes.length).toBe(100);
    expect(resolved).toBe(1);
  });

  it.each([
    ["http://169.254.169.254/latest/meta-data/", "metadata"],
    ["http://127.0.0.2/", "another loopback address"],
    ["http://2130706434/", "decimal loopback"],
    ["http://[::1]/", "v6 loopback"],
    ["http://10.0.0.1/", "private"],
  ])("refuses a redirect to %s (%s)", async (to) => {
    const url = `${base}/redirect?to=${encodeURIComponent(to)}`;
    expect(await codeOf(fetchUrl(url, { ...opts, isAllowed: onlyLoopback127 }))).toBe("refused_address");
  });

  it("follows at most 3 redirects", async () => {
    expect(await codeOf(fetchUrl(`${base}/loop`, { ...opts, isAllowed: onlyLoopback127 }))).toBe(
      "too_many_redirects",
    );
    const two = `${base}/redirect?to=${encodeURIComponent(`/redirect?to=${encodeURIComponent("/ok")}`)}`;
    expect((await fetchUrl(two, { ...opts, isAllowed: onlyLoopback127 })).bytes.length).toBe(100);
  });

  it("caps bytes by Content-Length and by counting", async () => {
    expect(await codeOf(fetchUrl(`${base}/big`, { ...opts, isAllowed: onlyLoopback127 }))).toBe("too_large");
    expect(await codeOf(fetchUrl(`${base}/big-chunked`, { ...opts, isAllowed: onlyLoopback127 }))).toBe(
      "too_large",
    );
  });

  it("gives up at the deadline", async () => {
    const code = await codeOf(
      fetchUrl(`${base}/slow`, { ...opts, timeoutMs: 300, isAllowed: onlyLoopback127 }),
    );
    expect(code).toBe("timeout");
  });

  it("reports a non-2xx answer", async () => {
    expect(await codeOf(fetchUrl(`${base}/missing`, { ...opts, isAllowed: onlyLoopback127 }))).toBe(
      "http_status",
    );
  });

  it("refuses the loopback server itself unless allowed", async () => {
    expect(await codeOf(fetchUrl(`${base}/ok`, opts))).toBe("refused_address");
    expect(await codeOf(fetchUrl(`${base}/ok`, { ...opts, allowPrivate: true }))).toBe("ok");
  });
});
