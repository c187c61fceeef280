import { InvalidArgumentError, Option, type Command } from "commander";
import { positiveInt } from "./up.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .summary("run the whole pipeline end to end on the offline emoji dataset (~9 min on 2 cores)")
    .description(
      "The whole pipeline on this machine, as separate processes: build the emoji image-caption dataset\n" +
        "from npm packages, start Redis (a private one unless --redis), feature workers, a trainer, a\n" +
        "caption worker and the HTTP API; ingest; extract InceptionV3 features; train the caption decoder;\n" +
        "evaluate on a held-out art style beside a retrieval baseline; caption test images through the API;\n" +
        "write an HTML report. Everything it starts stops when it ends (Ctrl-C included).",
    )
    .addOption(new Option("--size <size>", "dataset size").choices(["ci", "demo", "default"]).default("demo"))
    .option("--full", "the full emoji dataset (--size default, ~9,000 images; about an hour on 2 cores)")
    .option("--epochs <n>", "training epochs", positiveInt)
    .option("--feature-workers <n>", "feature worker processes", positiveInt, 1)
    .option(
      "--augment-views <n>",
      "augmented views of each training image, extra training rows (default 1; 0 for ci: each view is\n" +
        "one more encode of every training image, ~80-150 s a view at demo size on 2 idle cores)",
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 8)
          throw new InvalidArgumentError("a whole number from 0 to 8");
        return n;
      },
    )
    .option("--redis <url>", "use this Redis instead of starting one")
    .option(
      "--s3 <bucket>",
      "use this S3 bucket as the store (endpoint and keys from CAPFLOW_S3_* variables)",
    )
    .option("--keep-running", "leave the pipeline running after the demo (Ctrl-C stops it)", false)
    .action(
      async (opts: {
        size: "ci" | "demo" | "default";
        full?: boolean;
        epochs?: number;
        featureWorkers: number;
        augmentViews?: number;
        redis?: string;
        s3?: string;
        keepRunning: boolean;
      }) => {
        if (opts.s3) Object.assign(process.env, { CAPFLOW_STORE: "s3", CAPFLOW_S3_BUCKET: opts.s3 });
        const size = opts.full ? "default" : opts.size;
        // Epochs picked from measurements on 2 cores: see README (demo timing).
        const epochs = opts.epochs ?? (size === "ci" ? 3 : size === "demo" ? 25 : 30);
        const { runDemo } = await import("../demo/run-demo.ts");
        await runDemo({
          size,
          epochs,
          featureWorkers: opts.featureWorkers,
          // One view: the demo's training images are 1,200, so a view costs ~1,200 encodes, and two
          // would take the 300-emoji demo past 10 minutes on 2 cores. ci stays clean (90-second run).
          augmentViews: opts.augmentViews ?? (size === "ci" ? 0 : 1),
          redis: opts.redis,
          keepRunning: opts.keepRunning,
        });
      },
    );
}
