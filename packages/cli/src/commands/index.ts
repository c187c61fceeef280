import type { Command } from "commander";
import { registerApi } from "./api.ts";
import { registerCaption } from "./caption.ts";
import { registerDataset } from "./dataset.ts";
import { registerDemo } from "./demo.ts";
import { registerEval } from "./eval.ts";
import { registerExport } from "./export.ts";
import { registerIngest } from "./ingest.ts";
import { registerQueue } from "./queue.ts";
import { registerReconcile } from "./reconcile.ts";
import { registerReport } from "./report.ts";
import { registerStatus } from "./status.ts";
import { registerTrain } from "./train.ts";
import { registerUp } from "./up.ts";
import { registerWorker } from "./worker.ts";

/** Every subcommand, one file each. Role code is imported lazily so `--help` stays instant. */
export function registerCommands(program: Command): void {
  registerUp(program);
  registerDemo(program);
  registerDataset(program);
  registerIngest(program);
  registerTrain(program);
  registerEval(program);
  registerWorker(program);
  registerStatus(program);
  registerQueue(program);
  registerReconcile(program);
  registerReport(program);
  registerApi(program);
  registerCaption(program);
  registerExport(program);
}
