#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { registerCommands } from "./commands/index.ts";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command()
  .name("capflow")
  .description(
    "capflow: a distributed image-captioning pipeline.\n" +
      "Ingest datasets, extract InceptionV3 features on many workers, train an LSTM caption decoder,\n" +
      "and serve captions. Roles talk through BullMQ queues on Redis and an object store.\n" +
      "With no CAPFLOW_REDIS_URL, capflow starts (or reuses) a private redis-server under .capflow/.",
  )
  .version(`capflow ${version} (node ${process.version})`, "-V, --version", "print the version and exit")
  .configureHelp({ helpWidth: 110 })
  .showHelpAfterError("(run with --help for usage)")
  .addHelpText(
    "after",
    "\nConfiguration comes from CAPFLOW_* environment variables; see .env.example.\n" +
      "Start here: capflow demo   (the whole pipeline on a small dataset, about 5 minutes)",
  );

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`capflow: ${message}\n`);
  process.exit(1);
});
