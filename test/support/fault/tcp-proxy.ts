import net from "node:net";

export interface ProxyFaults {
  /** Share of new connections closed at once (a dropped connect). */
  dropRate?: number;
  /** Share of new connections reset (RST) after `resetAfterMs`. */
  resetRate?: number;
  resetAfterMs?: number;
  /** Delay added to every chunk in both directions. */
  delayMs?: number;
  /** Share of new connections that stall: bytes are swallowed, never forwarded. */
  stallRate?: number;
  /**
   * HTTP-aware faults per request (a client chunk that starts with a method), for keep-alive clients
   * that open one connection for everything: answer 503 and close, reset, or stall from there on.
   * Unlike the connection faults, these follow the current `faults` on live connections too.
   */
  http?: { status503Rate?: number; resetRate?: number; stallRate?: number };
}

const HTTP_REQUEST = /^(GET|PUT|HEAD|POST|DELETE) /;

/**
 * A TCP proxy in front of Redis or the S3 server. `pause()` is an outage (live connections reset, new
 * ones refused at the socket level by closing them), `resume()` ends it; faults apply to new
 * connections. Counts what it did, for the report.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private paused = false;
  faults: ProxyFaults = {};
  readonly counts = {
    connections: 0,
    dropped: 0,
    reset: 0,
    stalled: 0,
    outages: 0,
    requests: 0,
    http503: 0,
    httpReset: 0,
    httpStalled: 0,
  };
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = "127.0.0.1",
    private readonly random: () => number = Math.random,
  ) {}

  async start(port = 0): Promise<this> {
    this.server = net.createServer((client) => this.onConnection(client));
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private onConnection(client: net.Socket): void {
    this.counts.connections++;
    const f = this.faults;
    if (this.paused || (f.dropRate && this.random() < f.dropRate)) {
      if (!this.paused) this.counts.dropped++;
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", cleanup).on("close", cleanup);
    upstream.on("error", cleanup).on("close", cleanup);
    if (f.stallRate && this.random() < f.stallRate) {
      this.counts.stalled++;
      client.on("data", () => undefined);
      return;
    }
    const pipe = (from: net.Socket, to: net.Socket) =>
      from.on("data", (chunk) => {
        if (f.delayMs) setTimeout(() => to.writable && to.write(chunk), f.delayMs);
        else if (to.writable) to.write(chunk);
      });
    let stalled = false;
    client.on("data", (chunk: Buffer) => {
      if (stalled) return;
      // Read per request, not per connection: keep-alive connections outlive a change of `faults`,
      // and `faults = {}` must mean no more request faults (a test checks its objects at rest).
      const h = this.faults.http;
      if (h && HTTP_REQUEST.test(chunk.toString("latin1", 0, 8))) {
        this.counts.requests++;
        const roll = this.random();
        const a = h.status503Rate ?? 0;
        const b = a + (h.resetRate ?? 0);
        const c = b + (h.stallRate ?? 0);
        if (roll < a) {
          this.counts.http503++;
          client.end("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
          upstream.destroy();
          return;
        }
        if (roll < b) {
          this.counts.httpReset++;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        if (roll < c) {
          this.counts.httpStalled++;
          stalled = true;
          return;
        }
      }
      if (f.delayMs) setTimeout(() => upstream.writable && upstream.write(chunk), f.delayMs);
      else if (upstream.writable) upstream.write(chunk);
    });
    pipe(upstream, client);
    if (f.resetRate && this.random() < f.resetRate) {
      this.counts.reset++;
      setTimeout(() => {
        client.resetAndDestroy();
        upstream.destroy();
      }, f.resetAfterMs ?? 50);
    }
  }

  /** Outage: reset every live connection and refuse new ones until `resume()`. */
  pause(): void {
    this.paused = true;
    this.counts.outages++;
    this.resetAll();
  }

  resume(): void {
    this.paused = false;
  }

  resetAll(): void {
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  async stop(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
