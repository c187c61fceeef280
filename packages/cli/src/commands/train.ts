import { InvalidArgumentError, Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a positive number, got "${v}"`);
  return n;
};

export function registerTrain(program: Command): void {
  program
    .command("train")
    .summary("train a caption model on an ingested dataset's features")
    .description(
      "Train the LSTM caption decoder on a dataset's feature shards. By default the run is submitted to\n" +
        "the training queue (a `capflow worker training` process runs it) and followed here; --in-process\n" +
        "runs it in this process. Every epoch is evaluated on the validation split (loss, BLEU-1..4,\n" +
        "CIDEr-D) and checkpointed to runs/<run-id>/epoch-<n>/; a killed run resumes from its newest\n" +
        "complete checkpoint when resubmitted with the same --run-id. The test split is scored at the end\n" +
        "beside a nearest-neighbour retrieval baseline, and the best epoch is published with --publish-as.",
    )
    .requiredOption("-d, --dataset <name>", "an ingested dataset")
    .option("-e, --epochs <n>", "epochs to train", positiveInt, 10)
    .option("--run-id <id>", "name of the run (reuse it to resume)")
    .option("--encoder <id>", "encoder id of the features (default: the one the feature workers run)")
    .addOption(
      new Option("--method <method>", "training method")
        .choices(["teacher-forcing", "prefix"])
        .default("teacher-forcing"),
    )
    .option("--batch-size <n>", "captions per batch (prefix: samples per batch)", positiveInt, 64)
    .option("--learning-rate <x>", "Adam learning rate", positiveNumber, 0.001)
    .option("--min-word-count <n>", "words seen fewer times become <unk>", positiveInt, 1)
    .option("--seed <n>", "seed for initialisation, dropout and data order", positiveInt, 1)
    .option("--beam-width <n>", "beam width for the test report", positiveInt, 3)
    .option("--publish-as <name>", "publish the best epoch as models/<name>/latest")
    .option(
      "--window-shards <n>",
      "feature shards held and shuffled together (memory grows with it, not the dataset; keep it to resume)",
      positiveInt,
      64,
    )
    .option(
      "--word-vectors <file>",
      "frozen pretrained word vectors, GloVe text format (e.g. glove.6B.200d.txt)",
    )
    .option("--embed-dim <n>", "word embedding size (must match --word-vectors)", positiveInt)
    .option("--units <n>", "LSTM and image-projection width (default 256)", positiveInt)
    .addOption(
      new Option(
        "--merge <kind>",
        "how the image meets the words: the tutorial's relu layers, or a linear image path and a residual relu layer",
      )
        .choices(["residual", "tutorial"])
        .default("residual"),
    )
    .option("--in-process", "train in this process instead of submitting to the queue", false)
    .action(async (opts) => {
      const { trainCommand } = await import("../actions/train.ts");
      await trainCommand(opts);
    });
}
