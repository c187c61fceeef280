import type { Command } from "commander";
import { InvalidArgumentError } from "commander";

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive whole number, got "${v}"`);
  return n;
};

export function registerReport(program: Command): void {
  program
    .command("report")
    .summary("write a training run's HTML report")
    .description(
      "Render a finished run's report: loss and score curves per epoch, test BLEU/CIDEr against the\n" +
        "retrieval baseline, a grid of test images with predicted and reference captions, config and\n" +
        "timings. One self-contained HTML file (no network needed to view it), written to the store as\n" +
        "runs/<run>/report.html and, with --out, to a local file.",
    )
    .argument("<run>", "the run id")
    .option("-o, --out <file>", "also write the report to this local file")
    .option("--max-images <n>", "test images in the grid", positive, 48)
    .action(async (run: string, opts: { out?: string; maxImages: number }) => {
      const { CommonEnv, createStore, parseEnv } = await import("@capflow/common");
      const { writeReport } = await import("@capflow/trainer");
      const env = parseEnv(CommonEnv, process.env, "report");
      const store = createStore(env);
      try {
        const r = await writeReport(store, run, {
          maxImages: opts.maxImages,
          ...(opts.out ? { outFile: opts.out } : {}),
        });
        process.stdout.write(
          `report: ${store.location}/${r.key}${r.file ? `\n        ${r.file}` : ""} (${r.bytes} bytes)\n`,
        );
      } finally {
        await store.close();
      }
    });
}
