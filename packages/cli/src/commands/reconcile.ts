import type { Command } from "commander";

export function registerReconcile(program: Command): void {
  program
    .command("reconcile")
    .summary("re-enqueue the feature shards of a dataset that have neither output nor a live job")
    .description(
      "Compare a dataset's shards (datasets/<name>/dataset.json, or the shard lists in the store when\n" +
        "ingest never finished) with the committed feature indexes of an encoder and the features queue,\n" +
        "and re-enqueue exactly the shards that have neither output nor a waiting/active/delayed job\n" +
        "(failed jobs are removed first). Run it after Redis lost its state (restart without persistence,\n" +
        "FLUSHALL, failover) or after removing jobs by hand. Prints { shards, done, queued, reenqueued }.",
    )
    .argument("<dataset>", "the dataset's name in the store")
    .option("--encoder <id>", "encoder whose outputs count (default: encoders/current.json)")
    .option("--dry-run", "only report what would be re-enqueued")
    .action(async (dataset: string, opts: { encoder?: string; dryRun?: boolean }) => {
      const { reconcileCommand } = await import("../actions/reconcile.ts");
      await reconcileCommand(dataset, opts);
    });
}
