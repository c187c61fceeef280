import { InvalidArgumentError, Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

interface CaptionCliOptions {
  model: string;
  method: "beam" | "greedy" | "rerank";
  beamWidth: number;
  bulk?: string;
  split?: "train" | "val" | "test";
  out?: string;
  json: boolean;
}

export function registerCaption(program: Command): void {
  program
    .command("caption")
    .summary("caption image files, or a whole ingested dataset with --bulk")
    .description(
      "Caption images with the published model (a running `capflow worker captions` does the work).\n\n" +
        "  capflow caption a.jpg b.png          a table: one line per file, in the order given\n" +
        "  capflow caption --json *.jpg         the same as JSON lines ({file, caption, logProb, modelVersion})\n" +
        "  capflow caption --bulk flickr8k --split test --out test-captions.jsonl\n\n" +
        "Files are stored by content first, so captioning the same image twice with the same model and\n" +
        "decoding does the work once. --bulk first waits (with progress) until every shard of the dataset\n" +
        "has features from the model's encoder, or says which are missing and what to run; then it submits\n" +
        "one job per shard (the same submission as POST /v1/caption-jobs), shows progress on stderr and\n" +
        "writes one JSON line per image to --out or stdout. Exits 1 when any image failed.",
    )
    .argument("[images...]", "image files (JPEG, PNG, GIF, WebP)")
    .option("-m, --model <name>", "published model name", "default")
    .addOption(
      new Option("--method <method>", "decoding").choices(["beam", "greedy", "rerank"]).default("beam"),
    )
    .option("--beam-width <n>", "beam width for --method beam (1-20)", beamWidth, 3)
    .option("--bulk <dataset>", "caption every image of an ingested dataset")
    .addOption(
      new Option("--split <split>", "with --bulk: keep only this split's images").choices([
        "train",
        "val",
        "test",
      ]),
    )
    .option("-o, --out <file>", "with --bulk: write the results here (default: stdout)")
    .option("--json", "image files: print JSON lines instead of a table (--bulk always does)", false)
    .action(async (images: string[], opts: CaptionCliOptions) => {
      const ingest = await import("../actions/caption.ts");
      if (opts.bulk) {
        if (images.length > 0)
          throw new InvalidArgumentError("give either image files or --bulk <dataset>, not both");
        await ingest.captionBulkCommand(opts.bulk, opts);
        return;
      }
      if (images.length === 0) throw new InvalidArgumentError("give image files, or --bulk <dataset>");
      if (opts.split || opts.out) throw new InvalidArgumentError("--split and --out go with --bulk");
      const failed = await ingest.captionImagesCommand(images, opts);
      if (failed > 0) process.exitCode = 1;
    });
}

function beamWidth(value: string): number {
  const n = positiveInt(value);
  if (n < 1 || n > 20) throw new InvalidArgumentError(`the beam width is 1-20, got ${value}`);
  return n;
}
