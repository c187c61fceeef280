import type { Command } from "commander";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .summary("where each dataset, training run and bulk caption job stands")
    .description(
      "Read the store and the queues and print, per dataset: images, captions and splits; feature\n" +
        "shards done/running/queued/failed per encoder (the current one and each published model's),\n" +
        "quarantined images by reason, and an ETA from the recent rate. Per training run: epoch, loss,\n" +
        "BLEU-4, CIDEr, where it is published, its HTML report. Per bulk caption job: shards and images\n" +
        "done. Also the workers connected to each queue.",
    )
    .argument("[dataset]", "only this dataset (and the runs and caption jobs that use it)")
    .option("--json", "print one JSON object", false)
    .action(async (dataset: string | undefined, opts: { json: boolean }) => {
      const { statusCommand } = await import("../actions/status.ts");
      await statusCommand(dataset, opts);
    });
}
