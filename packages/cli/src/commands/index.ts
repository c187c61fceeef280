import type { Command } from "commander";
import { registerUp } from "./up.ts";
import { registerWorker } from "./worker.ts";

/** Every subcommand, one file each. Role code is imported lazily so `--help` stays instant. */
export function registerCommands(program: Command): void {
  registerUp(program);
  registerWorker(program);
}
