import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { assertKey, NotFoundError, type ObjectStore } from "./object-store.ts";
import { DEFAULT_S3_RETRY, S3RetryStrategy, type S3RetryPolicy } from "./s3-retry.ts";

export interface S3StoreOptions {
  bucket: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Key prefix inside the bucket, so several deployments can share one. */
  prefix?: string;
  /** A connection silent this long fails its request, which is then retried (default 30 s). */
  idleTimeoutMs?: number;
  /** Attempts and backoff (default {@link DEFAULT_S3_RETRY}). */
  retry?: Partial<S3RetryPolicy>;
}

function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    return err.$metadata.httpStatusCode === 404 || err.name === "NoSuchKey" || err.name === "NotFound";
  }
  return false;
}

function isPreconditionFailed(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.$metadata.httpStatusCode === 412 || err.name === "PreconditionFailed")
  );
}

/**
 * S3 (or any S3-protocol server). PutObject is atomic per object on S3 by definition: a reader sees
 * the whole old object or the whole new one. Requests the SDK classifies as retryable (timeouts,
 * resets, 500/502/503/504, throttling) are retried per request by {@link S3RetryStrategy}: 8 attempts,
 * jittered exponential backoff, no client-wide retry budget (see there why).
 */
export class S3Store implements ObjectStore {
  readonly kind = "s3" as const;
  readonly location: string;
  private readonly client: S3Client;
  private readonly prefix: string;
  private probe?: Promise<"atomic" | "best-effort">;

  constructor(private readonly opts: S3StoreOptions) {
    this.prefix = opts.prefix ? opts.prefix.replace(/\/?$/, "/") : "";
    this.location = `s3://${opts.bucket}/${this.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ""}`;
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      retryStrategy: new S3RetryStrategy({ ...DEFAULT_S3_RETRY, ...opts.retry }),
      // The SDK's defaults have no timeout at all: a connection that stops answering (measured in
      // test/chaos/store-faults: 1 stalled request in 100 hung its put forever, and with it the
      // worker's job, whose lock kept renewing). An idle socket now fails after 30 s, a connect after
      // 5 s; both are TimeoutErrors, which are retried, and the timed-out socket is destroyed, so the
      // retry goes out on a fresh connection.
      requestHandler: { connectionTimeout: 5_000, socketTimeout: opts.idleTimeoutMs ?? 30_000 },
      credentials:
        opts.accessKeyId && opts.secretAccessKey
          ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey }
          : undefined,
    });
  }

  private k(key: string): string {
    return this.prefix + assertKey(key);
  }

  async put(key: string, body: Uint8Array | string, opts?: { contentType?: string }): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.opts.bucket,
        Key: this.k(key),
        Body: body,
        ContentType: opts?.contentType,
      }),
    );
  }

  async putStream(
    key: string,
    body: Readable | AsyncIterable<Uint8Array | string>,
    opts?: { contentType?: string },
  ): Promise<void> {
    // lib-storage sends one PutObject when the body fits in a part, else a multipart upload (parts
    // of 8 MiB, 4 in flight: at most ~32 MiB buffered), aborted on failure so no part lingers.
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.opts.bucket,
        Key: this.k(key),
        Body: body instanceof Readable ? body : Readable.from(body),
        ContentType: opts?.contentType,
      },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean> {
    if ((await this.conditionalCreate()) === "best-effort" && (await this.head(key))) return false;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.k(key), Body: body, IfNoneMatch: "*" }),
      );
      return true;
    } catch (err) {
      if (isPreconditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Some S3-protocol servers (s3rver) ignore If-None-Match on PUT; probe once rather than trusting it.
   * On those, create-only is head-then-put: correct without races, and callers must keep their writes
   * idempotent anyway (they are: keys are content-derived).
   */
  readonly conditionalCreate = (): Promise<"atomic" | "best-effort"> => {
    this.probe ??= (async () => {
      const key = this.k(`.capflow-probe/${Date.now()}-${Math.random().toString(36).slice(2)}`);
      await this.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: key, Body: "1" }));
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.opts.bucket, Key: key, Body: "2", IfNoneMatch: "*" }),
        );
        return "best-effort" as const;
      } catch (err) {
        if (isPreconditionFailed(err)) return "atomic" as const;
        return "best-effort" as const;
      } finally {
        await this.client
          .send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }))
          .catch(() => {});
      }
    })();
    return this.probe;
  };

  async get(key: string): Promise<Buffer> {
    const stream = await this.getStream(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async getStream(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.k(key) }),
      );
      if (!out.Body) throw new NotFoundError(key);
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(key);
      throw err;
    }
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.k(key) }),
      );
      return { size: out.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.opts.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
        }),
      );
      for (const obj of out.Contents ?? []) {
        if (!obj.Key) continue;
        const key = obj.Key.slice(this.prefix.length);
        if (key.startsWith(".capflow-probe/")) continue;
        yield { key, size: obj.Size ?? 0 };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.k(key) }));
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
