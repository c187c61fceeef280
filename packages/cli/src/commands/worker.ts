import { Argument, type Command } from "commander";

export const ROLES = ["features", "training", "captions", "ingest"] as const;
export type WorkerRole = (typeof ROLES)[number];

/** Runs one worker process for a queue. Scale out by running more of them, on as many machines. */
export async function runWorker(role: WorkerRole): Promise<void> {
  switch (role) {
    case "features":
      await (await import("@capflow/feature-worker")).main();
      return;
    case "training":
      await (await import("@capflow/trainer")).main();
      return;
    case "captions":
      await (await import("@capflow/caption-worker")).main();
      return;
    case "ingest":
      await (await import("@capflow/ingest")).ingestWorkerMain();
      return;
  }
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .summary("run a worker process for one queue")
    .description(
      "Run one worker process for a queue until SIGINT/SIGTERM.\n" +
        "  features   turn shards of images into 2048-d InceptionV3 vectors (one per CPU socket or GPU)\n" +
        "  training   fit caption models from training jobs, checkpointing every epoch\n" +
        "  captions   caption single images and bulk jobs with the published model\n" +
        "  ingest     store the images of dataset ranges from `capflow ingest --distribute`\n" +
        "             (every ingest worker must see the dataset's folder at the same path)\n" +
        "Each serves /healthz, /readyz and /metrics on CAPFLOW_OPS_PORT (0 = a free port, logged).",
    )
    .addArgument(new Argument("<role>", "which queue to work").choices(ROLES))
    .action(async (role: WorkerRole) => runWorker(role));
}
