import type { Readable } from "node:stream";

/**
 * The object store: source of truth for images, manifests, features, checkpoints and results.
 * Keys are relative, '/'-separated, and never contain '..'. Writes are whole-object and atomic:
 * a reader sees the old bytes or the new ones, never a part.
 */
export interface ObjectStore {
  readonly kind: "local" | "s3";
  /** Where it points, for logs (no secrets). */
  readonly location: string;
  put(key: string, body: Uint8Array | string, opts?: { contentType?: string }): Promise<void>;
  /**
   * Writes an object of any size from a stream without holding it whole (a file renamed into place;
   * an S3 multipart upload in 8 MiB parts). As atomic as `put`: readers see the old object or the
   * whole new one.
   */
  putStream(
    key: string,
    body: Readable | AsyncIterable<Uint8Array | string>,
    opts?: { contentType?: string },
  ): Promise<void>;
  /**
   * Creates the object only if absent; returns false if it already existed. `atomic` tells whether
   * the backend guarantees this under races (some S3 servers ignore If-None-Match).
   */
  putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean>;
  readonly conditionalCreate: () => Promise<"atomic" | "best-effort">;
  get(key: string): Promise<Buffer>;
  getStream(key: string): Promise<Readable>;
  head(key: string): Promise<{ size: number } | undefined>;
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  delete(key: string): Promise<void>;
  /** Cheap reachability check for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
  }
}

export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
}

export function assertKey(key: string): string {
  if (
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith("/") ||
    key.includes("\\") ||
    key.includes("\0") ||
    key.split("/").some((part) => part === ".." || part === "." || part === "")
  ) {
    throw new InvalidKeyError(`invalid store key: ${JSON.stringify(key)}`);
  }
  return key;
}

export async function getJson<T = unknown>(store: ObjectStore, key: string): Promise<T> {
  return JSON.parse((await store.get(key)).toString("utf8")) as T;
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value), { contentType: "application/json" });
}
