#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands/index.ts";
import { settleHome } from "./home.ts";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

/** Exit codes: 0 done, 1 the work failed, 2 the command line was wrong (as POSIX utilities do). */
const USAGE = 2;
const ONE_SHOT = new Set(["ingest", "caption", "status", "queue", "reconcile", "train", "report", "export"]);

const program = new Command()
  .name("capflow")
  .description(
    "capflow: a distributed image-captioning pipeline.\n" +
      "Ingest datasets, extract InceptionV3 features on many workers, train an LSTM caption decoder,\n" +
      "and serve captions. Roles talk through BullMQ queues on Redis and an object store.\n" +
      "With no CAPFLOW_REDIS_URL, capflow starts (or reuses) a private redis-server in its home: the\n" +
      "first .capflow folder in the current directory or above it, else the capflow checkout's own\n" +
      "(CAPFLOW_HOME overrides).",
  )
  .version(`capflow ${version} (node ${process.version})`, "-V, --version", "print the version and exit")
  .configureHelp({ helpWidth: 110 })
  .showHelpAfterError("(run with --help for usage)")
  // Commander exits 1 on a usage error; throw instead, so that every usage error exits 2 below.
  .exitOverride()
  .addHelpText(
    "after",
    "\nConfiguration comes from CAPFLOW_* environment variables; see .env.example.\n" +
      "Start here: capflow demo   (the whole pipeline on a small dataset, about 9 minutes on 2 cores)",
  );

program.hook("preAction", (_root, action) => {
  let command = action;
  while (command.parent && command.parent !== program) command = command.parent;
  // One-shot commands print their own progress and results; their JSON logs (stderr) start at warn.
  if (!process.env.CAPFLOW_LOG_LEVEL && ONE_SHOT.has(command.name())) process.env.CAPFLOW_LOG_LEVEL = "warn";
  const notice = settleHome(command.name(), process.env, process.cwd());
  if (notice) process.stderr.write(`${notice}\n`);
});

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and --version arrive here too (exit code 0); commander has printed the message already,
    // except for InvalidArgumentError thrown from an action.
    if (err.exitCode === 0) process.exit(0);
    if (err.code === "commander.invalidArgument" && !err.message.startsWith("error:"))
      process.stderr.write(`capflow: ${err.message}\n(run with --help for usage)\n`);
    process.exit(USAGE);
  }
  process.stderr.write(`capflow: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
