import type { RedisClient } from "@capflow/common";

/**
 * Which copy of a content counts, decided in Redis rather than in one process's memory (a 3.3M-image
 * set is 363 MB of ids). Each record claims its content id with its position in the dataset
 * (HSETNX) and keeps it if the id holds its own position. The assembler claims in dataset order, so
 * the first copy in the file wins, as in a one-process ingest; positions are fixed, so an assembly
 * redone after a crash gets the same answers from the claims the first one left.
 *
 * Redis, not the store's conditional create: the order must be the file's, not whichever worker came
 * first, and S3 servers differ in honouring If-None-Match (s3rver ignores it).
 * One hash per run under one hash tag (a Redis Cluster keeps it on one node): 122 B an image
 * (12.2 MB for 100k claims, MEMORY USAGE on Redis 7.0), ~400 MB for 3.3M images, only while the run
 * is assembled; deleted when it is done, expiring after a week if a run is abandoned.
 */
export const SEEN_TTL_SECONDS = 7 * 24 * 3600;
const CHUNK = 1_000;

// Beside the `ingest` queue's keys (`<prefix>:ingest:*`, BullMQ's own), not among them.
export const seenKey = (prefix: string, runId: string) => `${prefix}:ingest-seen:{${runId}}`;

export async function claimFirst(
  redis: RedisClient,
  key: string,
  claims: ReadonlyArray<{ id: string; position: number }>,
): Promise<boolean[]> {
  const first: boolean[] = [];
  for (let i = 0; i < claims.length; i += CHUNK) {
    const chunk = claims.slice(i, i + CHUNK);
    const pipe = redis.pipeline();
    for (const { id, position } of chunk) pipe.hsetnx(key, id, position).hget(key, id);
    pipe.expire(key, SEEN_TTL_SECONDS);
    const replies = (await pipe.exec()) ?? [];
    chunk.forEach(({ position }, j) => {
      const [err, owner] = replies[2 * j + 1] ?? [new Error("no reply")];
      if (err) throw err;
      first.push(owner === String(position));
    });
  }
  return first;
}
