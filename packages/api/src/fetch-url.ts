import dns from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { LookupFunction } from "node:net";

/**
 * Fetching a user-supplied URL without becoming an SSRF proxy (docs/reliability.md test 16).
 *
 * - only http/https, no credentials in the URL;
 * - the host is resolved once (every address), and refused if any address is loopback, private,
 *   CGNAT, link-local (cloud metadata 169.254.169.254), unspecified, multicast or reserved, in v4, v6
 *   or IPv4-mapped v6; odd literal spellings (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) are
 *   normalised by the WHATWG URL parser before the check, and refused like their dotted form;
 * - the socket connects to the vetted address itself (a custom `lookup`), so a second DNS answer
 *   (DNS rebinding) never reaches the connection;
 * - at most 3 redirects, each hop vetted again; a byte cap (Content-Length and counted) and one
 *   deadline over the whole chain;
 * - every failure is a FetchUrlError: its message is what the client may read, its `detail` (the
 *   address, the DNS or socket error) goes to the log only. A host that does not resolve and one that
 *   resolves to a refused address get the same answer, so the API does not tell an outsider which
 *   internal names exist; a refused connection is `fetch_failed`, never mistaken for a Redis outage.
 */

export const FETCH_ERROR_CODES = [
  "bad_url",
  "refused_address",
  "too_large",
  "timeout",
  "http_status",
  "too_many_redirects",
  "fetch_failed",
] as const;
export type FetchErrorCode = (typeof FETCH_ERROR_CODES)[number];

export class FetchUrlError extends Error {
  override name = "FetchUrlError";
  constructor(
    readonly code: FetchErrorCode,
    message: string,
    /** For the log, never for the client. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** The one message for a host that is refused or does not resolve (see the top of this file). */
export const REFUSED_HOST_MESSAGE = "the URL's host is not one the API fetches from";

/** Anything that is not already a FetchUrlError (socket, TLS, HTTP parse errors) as `fetch_failed`. */
export function asFetchError(err: unknown): FetchUrlError {
  if (err instanceof FetchUrlError) return err;
  const e = err as NodeJS.ErrnoException;
  return new FetchUrlError(
    "fetch_failed",
    "the URL could not be fetched",
    `${e.code ?? e.name}: ${e.message}`,
  );
}

export interface FetchUrlOptions {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects?: number;
  /** Skip the address check (tests, closed networks). */
  allowPrivate?: boolean;
  /** Replaces the address check (tests: allow exactly the test server's address). */
  isAllowed?: (address: string) => boolean;
  /** DNS, injectable for tests; defaults to `dns.lookup(host, { all: true })`. */
  resolve?: (hostname: string) => Promise<Array<{ address: string; family: number }>>;
}

export interface FetchedUrl {
  bytes: Buffer;
  contentType?: string;
  /** The URL the bytes came from, after redirects. */
  url: string;
}

const refusedV4 = new net.BlockList();
for (const [subnet, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  refusedV4.addSubnet(subnet, prefix, "ipv4");
}

// IPv6 is allowed only inside global unicast (2000::/3), minus the parts of it that tunnel to or embed
// IPv4 or are documentation. Everything else (::, ::1, fc00::/7, fe80::/10, ff00::/8, 64:ff9b::/96 NAT64,
// ::ffff:0:0/96 mapped) is outside 2000::/3; IPv4-mapped addresses are judged by their IPv4 part.
const globalV6 = new net.BlockList();
globalV6.addSubnet("2000::", 3, "ipv6");
const refusedInGlobalV6 = new net.BlockList();
for (const [subnet, prefix] of [
  ["2001::", 32], // Teredo
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4 (embeds an IPv4 address)
] as const) {
  refusedInGlobalV6.addSubnet(subnet, prefix, "ipv6");
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one. */
function expandV6(address: string): number[] | undefined {
  let a = address.toLowerCase().replace(/%.*$/, "");
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, dotted.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const halves = a.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const groups =
    halves.length === 2
      ? [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail]
      : head;
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16));
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, `::ffff:7f00:1`). */
export function mappedV4(address: string): string | undefined {
  const g = expandV6(address);
  if (!g || !g.slice(0, 5).every((x) => x === 0) || g[5] !== 0xffff) return undefined;
  const [hi, lo] = [g[6]!, g[7]!];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for every address a fetch on behalf of a user must never reach. */
export function isRefusedAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return refusedV4.check(address, "ipv4");
  if (family === 6) {
    const v4 = mappedV4(address);
    if (v4 !== undefined) return isRefusedAddress(v4);
    const bare = address.replace(/%.*$/, "");
    return !globalV6.check(bare, "ipv6") || refusedInGlobalV6.check(bare, "ipv6");
  }
  return true; // not an IP address at all
}

/** Parses and checks the URL's shape; the host is still to be vetted. */
export function parseFetchUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FetchUrlError("bad_url", "not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FetchUrlError("bad_url", `only http and https URLs are fetched, not ${url.protocol}`);
  }
  if (url.username || url.password)
    throw new FetchUrlError("bad_url", "URLs with credentials are not fetched");
  if (!url.hostname) throw new FetchUrlError("bad_url", "the URL has no host");
  return url;
}

/** Resolves the URL's host and returns the one address to connect to, or throws `refused_address`. */
export async function vetHost(url: URL, opts: FetchUrlOptions): Promise<{ address: string; family: 4 | 6 }> {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: Array<{ address: string; family: number }>;
  if (net.isIP(host)) {
    addresses = [{ address: host, family: net.isIP(host) }];
  } else {
    try {
      addresses = await (opts.resolve ?? ((h) => dns.lookup(h, { all: true, verbatim: true })))(host);
    } catch (err) {
      throw new FetchUrlError(
        "refused_address",
        REFUSED_HOST_MESSAGE,
        `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (addresses.length === 0)
      throw new FetchUrlError("refused_address", REFUSED_HOST_MESSAGE, `${host} resolves to nothing`);
  }
  if (!opts.allowPrivate) {
    const allowed = opts.isAllowed ?? ((a: string) => !isRefusedAddress(a));
    // Every address must pass, not just the first: a name that answers with one public and one
    // private address would otherwise be a coin toss away from the metadata service.
    const bad = addresses.find((a) => !allowed(a.address));
    if (bad)
      throw new FetchUrlError(
        "refused_address",
        REFUSED_HOST_MESSAGE,
        `${host} resolves to a refused address (${bad.address})`,
      );
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs a user-supplied URL safely (see the top of this file). */
export async function fetchUrl(raw: string, opts: FetchUrlOptions): Promise<FetchedUrl> {
  const maxRedirects = opts.maxRedirects ?? 3;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs);
  try {
    let url = parseFetchUrl(raw);
    for (let hop = 0; ; hop++) {
      const target = await withDeadline(vetHost(url, opts), controller.signal, opts.timeoutMs);
      const res = await get(url, target, opts.maxBytes, controller.signal, opts.timeoutMs);
      if (res.redirect !== undefined) {
        if (hop >= maxRedirects)
          throw new FetchUrlError("too_many_redirects", `more than ${maxRedirects} redirects`);
        url = parseFetchUrl(new URL(res.redirect, url).href);
        continue;
      }
      return { bytes: res.bytes!, contentType: res.contentType, url: url.href };
    }
  } catch (err) {
    throw asFetchError(err);
  } finally {
    clearTimeout(timer);
  }
}

function timeoutError(ms: number) {
  return new FetchUrlError("timeout", `no complete answer within ${ms} ms`);
}

function withDeadline<T>(p: Promise<T>, signal: AbortSignal, ms: number): Promise<T> {
  if (signal.aborted) return Promise.reject(timeoutError(ms));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timeoutError(ms));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function get(
  url: URL,
  target: { address: string; family: 4 | 6 },
  maxBytes: number,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<{ redirect?: string; bytes?: Buffer; contentType?: string }> {
  // Connect to the vetted address whatever the name resolves to now; Node may ask for all addresses
  // (autoSelectFamily), so answer in both shapes.
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        target,
      ]);
    } else callback(null, target.address, target.family);
  };
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(err);
    };
    const req = client.request(
      url,
      {
        method: "GET",
        lookup,
        signal,
        agent: false,
        headers: { accept: "image/*", "user-agent": "capflow-api" },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (REDIRECTS.has(status) && res.headers.location) {
          res.resume();
          settled = true;
          resolve({ redirect: res.headers.location });
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          fail(new FetchUrlError("http_status", `the server answered HTTP ${status}`));
          return;
        }
        const declared = Number(res.headers["content-length"]);
        if (Number.isFinite(declared) && declared > maxBytes) {
          fail(new FetchUrlError("too_large", `the image is ${declared} bytes, more than ${maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes)
            fail(new FetchUrlError("too_large", `the image is more than ${maxBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          if (settled) return;
          settled = true;
          resolve({ bytes: Buffer.concat(chunks), contentType: res.headers["content-type"] });
        });
        res.on("error", (err) => fail(signal.aborted ? timeoutError(timeoutMs) : asFetchError(err)));
        res.on("aborted", () =>
          fail(signal.aborted ? timeoutError(timeoutMs) : asFetchError(new Error("connection closed early"))),
        );
      },
    );
    req.on("error", (err) => fail(signal.aborted ? timeoutError(timeoutMs) : asFetchError(err)));
    req.end();
  });
}
