import path from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";

interface EmojiOptions {
  size: "ci" | "demo" | "default" | "full";
  lowRes: boolean;
  testRender?: number;
}

function drawSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 8 || n > 299)
    throw new InvalidArgumentError("a whole number of pixels from 8 to 299");
  return n;
}

export function registerDataset(program: Command): void {
  const dataset = program.command("dataset").summary("build datasets that need no download");
  dataset
    .command("emoji")
    .summary("build the offline emoji image-caption dataset")
    .description(
      "Build a real image-caption dataset from npm packages: emoji drawn by six vendors (Noto, Twemoji,\n" +
        "OpenMoji, old Noto, EmojiOne, Fluent) with their human-written CLDR names and keywords as captions,\n" +
        "in Flickr8k captions.txt form + Images/ + split lists. Splits hold out an art style: train = Noto,\n" +
        "Twemoji, OpenMoji, old Noto; validation = EmojiOne; test = Fluent. Ingest it with\n" +
        "`capflow ingest <out> --dataset emoji`.",
    )
    .argument("[out]", "output folder (default .capflow/datasets/emoji, or emoji-test-render-<px>)")
    .addOption(
      new Option(
        "--size <size>",
        "ci: 60 emoji (seconds); demo: 300; default: ~1,900 emoji; full: + skin tones",
      )
        .choices(["ci", "demo", "default", "full"])
        .default("default"),
    )
    .option("--low-res", "render every style at 64 px and upscale, so sharpness gives no style away", false)
    .option(
      "--test-render <px>",
      "a check set instead: only the test style (Fluent), drawn at <px> pixels and enlarged, all in " +
        "the test split; ingest it under its own name (the folder's: emoji-test-render-<px>) and " +
        "score a model on it",
      drawSize,
    )
    .action(async (outArg: string | undefined, opts: EmojiOptions) => {
      const { buildEmojiDataset } = await import("@capflow/ingest");
      const started = Date.now();
      const out =
        outArg ??
        (opts.testRender !== undefined
          ? `.capflow/datasets/emoji-test-render-${opts.testRender}`
          : ".capflow/datasets/emoji");
      const result = await buildEmojiDataset(path.resolve(out), {
        size: opts.size,
        lowRes: opts.lowRes,
        ...(opts.testRender !== undefined ? { testRender: opts.testRender } : {}),
        onProgress: (done, total) => {
          if (process.stderr.isTTY) process.stderr.write(`\rrendering ${done}/${total}`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write("\n");
      const { train, val, test, emoji } = result.counts;
      process.stdout.write(
        `emoji dataset in ${result.dir} (${((Date.now() - started) / 1000).toFixed(1)} s): ${emoji} emoji; ` +
          `train ${train}, val ${val}, test ${test} images\n`,
      );
    });
  dataset
    .command("photos")
    .summary("build a small set of real photographs (the out-of-domain check)")
    .description(
      "Copy the photographs that Debian's mate-backgrounds package installs (apt-get install\n" +
        "mate-backgrounds: 12 nature photographs in /usr/share/backgrounds/mate/nature), at most 1024 px,\n" +
        "into a jsonl-folder dataset, all in the test split, captioned from their file names. A model\n" +
        "trained on emoji should flag them out of domain. Ingest it with\n" +
        "`capflow ingest <out> --dataset photos`.",
    )
    .argument("[out]", "output folder", ".capflow/datasets/photos")
    .option("--from <dirs...>", "folders of JPEG/PNG/WebP photographs instead of mate-backgrounds'")
    .action(async (out: string, opts: { from?: string[] }) => {
      const { buildPhotoDataset, DEFAULT_PHOTO_SOURCES } = await import("@capflow/ingest");
      const result = await buildPhotoDataset(path.resolve(out), opts.from ?? DEFAULT_PHOTO_SOURCES);
      process.stdout.write(`photo dataset in ${result.dir}: ${result.images} photographs (test split)\n`);
    });
}
