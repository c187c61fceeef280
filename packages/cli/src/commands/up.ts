import path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import {
  CommonEnv,
  parseEnv,
  resolveRedisSettings,
  assertNoEviction,
  connectRedis,
  redactUrl,
} from "@capflow/common";
import { Supervisor } from "../supervisor.ts";

export const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return n;
};

export interface UpOptions {
  featureWorkers: number;
  trainers: number;
  captionWorkers: number;
  api: boolean;
}

/**
 * Starts the pipeline on this machine: Redis (embedded unless CAPFLOW_REDIS_URL), then each role as
 * its own process, until Ctrl-C. Returns the supervisor so `demo` can drive the same set-up.
 */
export async function up(
  opts: UpOptions,
  onReady?: (s: Supervisor, redisUrl: string) => Promise<void>,
): Promise<void> {
  const env = parseEnv(CommonEnv, process.env, "up");
  const { settings, endpoint } = await resolveRedisSettings(env);
  const probe = connectRedis(settings, "producer");
  try {
    await assertNoEviction(probe);
  } finally {
    probe.disconnect();
  }
  const supervisor = new Supervisor(path.resolve(env.CAPFLOW_HOME, "logs"), {
    CAPFLOW_REDIS_URL: endpoint.url,
  });
  const specs = [
    ...Array.from({ length: opts.featureWorkers }, (_, i) => ({
      name: `features-${i + 1}`,
      args: ["worker", "features"],
    })),
    ...Array.from({ length: opts.trainers }, (_, i) => ({
      name: `training-${i + 1}`,
      args: ["worker", "training"],
    })),
    ...Array.from({ length: opts.captionWorkers }, (_, i) => ({
      name: `captions-${i + 1}`,
      args: ["worker", "captions"],
    })),
    ...(opts.api ? [{ name: "api", args: ["api"], portVariable: "CAPFLOW_API_PORT" }] : []),
  ];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await supervisor.stopAll();
    await endpoint.owned?.stop();
  };
  process.once("SIGINT", () => void stop().then(() => process.exit(130)));
  process.once("SIGTERM", () => void stop().then(() => process.exit(143)));
  try {
    for (const spec of specs) await supervisor.start(spec);
    process.stdout.write(`capflow is up (Ctrl-C stops everything). Redis: ${redactUrl(endpoint.url)}\n`);
    for (const c of supervisor.children) {
      const url = await c.opsUrl;
      const what =
        c.name === "api" ? `${url}/v1/captions, ${url}/admin/queues, ${url}/metrics` : `${url}/metrics`;
      process.stdout.write(`  ${c.name.padEnd(12)} ${url ? what : "exited: see its log"}\n`);
    }
    process.stdout.write(`  logs         ${path.resolve(env.CAPFLOW_HOME, "logs")}\n`);
    if (onReady) await onReady(supervisor, endpoint.url);
    else await Promise.all(supervisor.children.map((c) => c.exited));
  } finally {
    await stop();
  }
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .summary("start Redis and the pipeline's processes on this machine")
    .description(
      "Start the whole pipeline on this machine until Ctrl-C: Redis (a private redis-server under\n" +
        ".capflow/redis unless CAPFLOW_REDIS_URL is set), feature workers, a trainer, caption workers and\n" +
        "the HTTP API, each as its own process. Logs go to .capflow/logs/<process>.log.",
    )
    .option("--feature-workers <n>", "feature worker processes", positiveInt, 1)
    .option("--trainers <n>", "trainer processes", positiveInt, 1)
    .option("--caption-workers <n>", "caption worker processes", positiveInt, 1)
    .option("--no-api", "do not start the HTTP API")
    .action(async (opts: UpOptions) => up(opts));
}
