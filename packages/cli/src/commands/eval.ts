import { Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

export function registerEval(program: Command): void {
  program
    .command("eval")
    .summary("score a published model on a labelled dataset's split beside the retrieval baseline")
    .description(
      "Caption every image of an ingested dataset's split with a published model, exactly as the caption\n" +
        "workers do (the model's feature transform, its default decoding, confidence), and score the\n" +
        "captions against the dataset's references: BLEU-1..4, CIDEr-D and exact match (the caption is one\n" +
        "of the references word for word: right for datasets whose references are names), each with a\n" +
        "bootstrap 95% interval, beside greedy decoding, retrieval re-ranking and the normalised retrieval\n" +
        "baseline (the nearest training image's name). Writes the report to the store\n" +
        "(reports/eval/<model>/<dataset>-<split>.json) and, with --out, to a file.",
    )
    .requiredOption("--model <name>", "a published model (models/<name>/latest)")
    .requiredOption("-d, --dataset <name>", "an ingested dataset whose features are extracted")
    .addOption(new Option("--split <split>", "which split").choices(["train", "val", "test"]).default("test"))
    .addOption(
      new Option("--method <method>", "decoding of the model row")
        .choices(["beam", "greedy", "rerank"])
        .default("beam"),
    )
    .option(
      "--rerank-k <n>",
      "training images whose captions the re-rank row scores (default 10)",
      positiveInt,
    )
    .option("--letters-only", "clean references with the tutorial's isalpha rule", false)
    .option("--out <file>", "also write the report (JSON) here")
    .action(
      async (opts: {
        model: string;
        dataset: string;
        split: "train" | "val" | "test";
        method: "beam" | "greedy" | "rerank";
        rerankK?: number;
        lettersOnly: boolean;
        out?: string;
      }) => {
        const { CommonEnv, startRuntime } = await import("@capflow/common");
        const { loadTf } = await import("@capflow/ml");
        const { evaluateModel } = await import("@capflow/trainer");
        const { formatTestScores } = await import("../actions/train.ts");
        const rt = await startRuntime("eval", CommonEnv, { signals: false });
        try {
          const { tf } = await loadTf();
          const report = await evaluateModel(rt.store, tf, {
            model: opts.model,
            dataset: opts.dataset,
            split: opts.split,
            decode: { method: opts.method, ...(opts.rerankK ? { rerankK: opts.rerankK } : {}) },
            lettersOnly: opts.lettersOnly,
          });
          process.stdout.write(
            `model ${report.modelVersion} on ${report.dataset}/${report.split}\n` +
              formatTestScores(report).replace(/^test split/, `${report.split} split`) +
              `report: ${report.reportKey}\n`,
          );
          if (opts.out) {
            const fs = await import("node:fs/promises");
            await fs.writeFile(opts.out, JSON.stringify(report, null, 2));
          }
        } finally {
          await rt.shutdown.run();
        }
      },
    );
}
