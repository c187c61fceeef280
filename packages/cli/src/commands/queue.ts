import { Argument, InvalidArgumentError, Option, type Command } from "commander";
import {
  CommonEnv,
  QUEUE_NAMES,
  createQueue,
  createRedis,
  parseEnv,
  resolveRedis,
  waitReady,
  type QueueName,
} from "@capflow/common";
import type { CleanableState } from "@capflow/common";

/** Mirrors the admin module's list so that registering the command imports no queue code. */
const CLEANABLE_STATES = [
  "completed",
  "failed",
  "delayed",
  "wait",
  "prioritized",
] as const satisfies readonly CleanableState[];

const ACTIONS = ["stats", "pause", "resume", "failed", "retry-failed", "clean", "concurrency"] as const;
type Action = (typeof ACTIONS)[number];

export interface QueueCommandOptions {
  json?: boolean;
  limit?: number;
  offset?: number;
  state?: CleanableState;
  olderThan?: number;
}

const duration = (v: string): number => {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration like 90s, 30m, 12h or 7d, got "${v}"`);
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] ?? "ms"]!;
  return Number(m[1]) * unit;
};
const count = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${v}"`);
  return n;
};

/** `capflow queue <action> <queue> [value]`: operator actions on a queue of the configured Redis. */
export async function queueCommand(
  action: Action,
  name: QueueName,
  value: string | undefined,
  opts: QueueCommandOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<void> {
  const { cleanJobs, listFailed, pauseQueue, queueStats, resumeQueue, retryFailed, setConcurrency } =
    await import("@capflow/common");
  const env = parseEnv(CommonEnv, process.env, "queue");
  const endpoint = await resolveRedis(env.CAPFLOW_REDIS_URL, env.CAPFLOW_HOME);
  const redis = createRedis(endpoint.url, "producer");
  await waitReady(redis);
  const queue = createQueue(name, { connection: redis, prefix: env.CAPFLOW_QUEUE_PREFIX });
  const print = (human: string, data: unknown) => out(opts.json ? JSON.stringify(data) : human);
  try {
    switch (action) {
      case "stats": {
        const s = await queueStats(queue, redis, env.CAPFLOW_QUEUE_PREFIX);
        const counts = Object.entries(s.counts)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ");
        print(
          `${s.queue}: ${s.paused ? "PAUSED" : "running"}, ${s.workers} workers, concurrency ${s.concurrency ?? "default"}\n  ${counts}`,
          s,
        );
        return;
      }
      case "pause":
        await pauseQueue(queue);
        print(`${name}: paused (active jobs finish, no new ones start)`, { queue: name, paused: true });
        return;
      case "resume":
        await resumeQueue(queue);
        print(`${name}: resumed`, { queue: name, paused: false });
        return;
      case "failed": {
        const jobs = await listFailed(queue, { offset: opts.offset ?? 0, limit: opts.limit ?? 50 });
        const human = jobs.length
          ? jobs
              .map((j) => `${j.id}\t${j.failedAt ?? "-"}\tattempts=${j.attemptsMade}\t${j.reason}`)
              .join("\n")
          : `${name}: no failed jobs`;
        print(human, jobs);
        return;
      }
      case "retry-failed": {
        const r = await retryFailed(queue);
        print(`${name}: ${r.retried} failed jobs moved back to wait`, r);
        return;
      }
      case "clean": {
        const state = opts.state ?? "completed";
        const olderThanMs = opts.olderThan ?? 24 * 3600e3;
        const r = await cleanJobs(queue, { state, olderThanMs, limit: opts.limit ?? 0 });
        print(`${name}: removed ${r.removed} ${state} jobs older than ${olderThanMs / 1000} s`, r);
        return;
      }
      case "concurrency": {
        if (value === undefined) throw new InvalidArgumentError("give a concurrency (1-1024) or 'default'");
        const n = value === "default" ? null : Number(value);
        await setConcurrency(redis, env.CAPFLOW_QUEUE_PREFIX, name, n);
        print(`${name}: workers will run with concurrency ${n ?? "as configured"} within a few seconds`, {
          queue: name,
          concurrency: n,
        });
        return;
      }
    }
  } finally {
    await queue.close();
    redis.disconnect();
    await endpoint.owned?.stop();
  }
}

export function registerQueue(program: Command): void {
  program
    .command("queue")
    .summary("inspect and operate a queue (pause, retry failed jobs, clean, concurrency)")
    .description(
      "Operate a queue on the configured Redis (CAPFLOW_REDIS_URL, CAPFLOW_QUEUE_PREFIX).\n" +
        "  stats          job counts per state, paused or not, connected workers, concurrency override\n" +
        "  pause|resume   stop/start taking new jobs everywhere (running jobs finish)\n" +
        "  failed         failed jobs with their reasons (--limit, --offset)\n" +
        "  retry-failed   move only the failed jobs back to wait\n" +
        "  clean          remove old jobs (--state completed|failed|..., --older-than 7d, --limit)\n" +
        "  concurrency    set every worker's concurrency at run time: <n> or 'default'",
    )
    .addArgument(new Argument("<action>", "what to do").choices(ACTIONS))
    .addArgument(new Argument("<queue>", "which queue").choices(QUEUE_NAMES))
    .addArgument(new Argument("[value]", "for concurrency: a number or 'default'"))
    .option("--json", "print JSON", false)
    .option("--limit <n>", "failed: how many to list; clean: at most this many (0 = all)", count)
    .option("--offset <n>", "failed: skip this many", count)
    .addOption(
      new Option("--state <state>", "clean: which jobs").choices(CLEANABLE_STATES).default("completed"),
    )
    .option("--older-than <duration>", "clean: finished longer ago than this (e.g. 7d)", duration)
    .action(async (action: Action, queue: QueueName, value: string | undefined, opts: QueueCommandOptions) =>
      queueCommand(action, queue, value, opts),
    );
}
