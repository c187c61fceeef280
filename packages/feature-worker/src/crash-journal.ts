import type { RedisClient } from "@capflow/common";
import { z } from "zod";
import type { CrashRecord } from "./crash-isolation.ts";

/**
 * Where a features job keeps its crash record (./crash-isolation.ts) between attempts: one small
 * Redis hash per job, `capflow:<prefix>:inflight:features:<jobId>`, `{ owner, record }`. Redis, not
 * the object store: it is written once per batch and must survive exactly as long as the job does.
 * Losing it (Redis restarted empty) costs nothing but the isolation already done.
 *
 * Every attempt claims the hash with a token of its own, and writes only while it still owns it: an
 * attempt that lost its lock while paused (SIGSTOP, a long GC) and wakes after a new attempt took the
 * job cannot overwrite the new attempt's record, and learns that it lost the job.
 */
export interface CrashJournal {
  /** Takes the record over for a new attempt (`owner`) and returns what the last attempt left. */
  claim(jobId: string, owner: string): Promise<CrashRecord | undefined>;
  /** Writes the record if `owner` still holds it; false when another attempt claimed it since. */
  write(jobId: string, owner: string, record: CrashRecord): Promise<boolean>;
  /** Deletes the record (if `owner` is given: only while that attempt still holds it). */
  clear(jobId: string, owner?: string): Promise<void>;
}

/**
 * A record outlives a stalled job's redelivery (seconds to minutes) and a failed shard until an
 * operator runs `capflow reconcile` (its isolation then resumes where it stopped), then expires.
 */
export const JOURNAL_TTL_MS = 7 * 24 * 3600 * 1000;

const CLAIM = `
local rec = redis.call('HGET', KEYS[1], 'record')
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return rec`;

const WRITE = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

const CLEAR = `
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export const journalKey = (prefix: string, jobId: string) => `capflow:${prefix}:inflight:features:${jobId}`;

export function redisCrashJournal(redis: RedisClient, prefix: string, ttlMs = JOURNAL_TTL_MS): CrashJournal {
  const key = (jobId: string) => journalKey(prefix, jobId);
  return {
    async claim(jobId, owner) {
      const raw = (await redis.eval(CLAIM, 1, key(jobId), owner, ttlMs)) as string | null;
      return raw ? parseRecord(raw) : undefined;
    },
    async write(jobId, owner, record) {
      return (await redis.eval(WRITE, 1, key(jobId), owner, JSON.stringify(record), ttlMs)) === 1;
    },
    async clear(jobId, owner) {
      if (owner === undefined) await redis.del(key(jobId));
      else await redis.eval(CLEAR, 1, key(jobId), owner);
    },
  };
}

const CrashRecordSchema = z.object({
  open: z.boolean(),
  deaths: z.number().int().min(0),
  inflight: z.array(z.string()),
  alone: z.boolean(),
  suspects: z.array(z.string()),
  strikes: z.record(z.string(), z.number().int().min(0)),
});

/** A record from another version or a hand edit is dropped rather than trusted: it only costs isolation. */
function parseRecord(raw: string): CrashRecord | undefined {
  try {
    const parsed = CrashRecordSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
