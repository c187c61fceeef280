import { InvalidArgumentError, Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 8) throw new InvalidArgumentError("a whole number from 0 to 8");
  return n;
}

const FORMATS = ["flickr8k-csv", "flickr8k-token", "flickr30k", "coco", "jsonl-folder"] as const;

export function registerIngest(program: Command): void {
  program
    .command("ingest")
    .summary("store a dataset's images and captions and enqueue feature extraction")
    .description(
      "Read a dataset in the format you have, store each image once under its sha256, write the\n" +
        "dataset manifest (image, split, captions) and enqueue one feature job per shard of images.\n" +
        "Running it again on the same data stores and enqueues nothing new.\n\n" +
        "Formats (detected from the files when --format is left out):\n" +
        "  flickr8k-csv     captions.txt (image,caption; Kaggle's Flickr8k) + Images/\n" +
        "  flickr8k-token   Flickr8k.token.txt + Flickr_8k.{train,dev,test}Images.txt + Flicker8k_Dataset/\n" +
        "  flickr30k        results.csv (image_name| comment_number| comment) + flickr30k_images/\n" +
        "  coco             annotations/captions_*.json + the image folders\n" +
        '  jsonl-folder     captions.jsonl ({"image": ..., "captions": [...]}) + images\n\n' +
        "Splits (train/val/test) come from the dataset where it has them:\n" +
        "  Flickr_8k.{train,dev,test}Images.txt beside captions.txt or Flickr8k.token.txt;\n" +
        "  COCO's annotation file name (captions_train*, captions_val*);\n" +
        '  a "split" field on a line of captions.jsonl.\n' +
        "Every image the dataset does not list gets a stable split from a hash of its file name:\n" +
        "80% train, 10% val, 10% test. So `caption --bulk <dataset> --split test` covers only ~10% of a\n" +
        "dataset without split lists. The summary prints the counts per split and where they came from.\n\n" +
        "Prints the summary on stdout (--json: one JSON object), progress and issues on stderr.",
    )
    .argument("<dir>", "the dataset's folder")
    .addOption(new Option("-f, --format <format>", "dataset format").choices(FORMATS))
    .option("-d, --dataset <name>", "name in the store (default: the folder's name)")
    .option("--shard-size <n>", "images per feature job", positiveInt, 128)
    .option(
      "--augment-views <n>",
      "augmented views of each training image (drawn small, blurred, JPEG-compressed, on other " +
        "backgrounds, shifted) that feature workers extract as extra training rows; validation " +
        "and test stay clean. Each view is one more encode of the image",
      nonNegativeInt,
      0,
    )
    .addOption(
      new Option("--on-error <policy>", "a malformed line: skip (report it and go on) or fail")
        .choices(["skip", "fail"])
        .default("skip"),
    )
    .option(
      "--distribute",
      "enqueue the dataset as `ingest` jobs (ranges of records) for `capflow worker ingest`\n" +
        "processes, on any machines that see this folder at the same absolute path; this command\n" +
        "waits for them and writes the same manifest and shards as a one-process ingest",
      false,
    )
    .option("--range-size <n>", "records per ingest job with --distribute", positiveInt, 10_000)
    .option("--json", "print the summary as one JSON object", false)
    .action(async (dir: string, opts) => {
      const { ingestCommand, DatasetPathError } = await import("../actions/ingest.ts");
      try {
        await ingestCommand(dir, opts);
      } catch (err) {
        // A wrong folder is a usage error (exit 2), found before any Redis is started.
        if (err instanceof DatasetPathError) throw new InvalidArgumentError(err.message);
        throw err;
      }
    });
}
