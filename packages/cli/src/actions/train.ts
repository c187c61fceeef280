import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import { CommonEnv, getJson, startRuntime, TrainingJob, type JobInput } from "@capflow/common";
import { loadTf } from "@capflow/ml";
import {
  formatInterval,
  SYSTEM_LABELS,
  SYSTEMS,
  trainRun,
  type RunProgress,
  type RunResult,
  type TestReport,
} from "@capflow/trainer";
import { formatProgress, submitRun } from "./submit-run.ts";

export interface TrainCommandOptions {
  dataset: string;
  epochs: number;
  runId?: string;
  encoder?: string;
  method: "teacher-forcing" | "prefix";
  batchSize: number;
  learningRate: number;
  minWordCount: number;
  seed: number;
  publishAs?: string;
  beamWidth: number;
  windowShards: number;
  inProcess: boolean;
  /** A GloVe-format text file; uploaded to the store so any trainer can read it. */
  wordVectors?: string;
  embedDim?: number;
  units?: number;
  merge?: "residual" | "tutorial";
}

/** `capflow train`: submits a run to the training queue and follows it, or runs it in this process. */
export async function trainCommand(opts: TrainCommandOptions): Promise<RunResult> {
  const rt = await startRuntime("train", CommonEnv);
  try {
    const encoderId: string = opts.encoder ?? (await currentEncoder(rt.store));
    let wordVectorsKey: string | undefined;
    if (opts.wordVectors) {
      const bytes = await fs.readFile(opts.wordVectors);
      wordVectorsKey = `embeddings/${createHash("sha256").update(bytes).digest("hex")}.txt`;
      if (!(await rt.store.head(wordVectorsKey))) await rt.store.put(wordVectorsKey, bytes);
    }
    const spec: JobInput<"training"> = {
      runId:
        opts.runId ?? `${opts.dataset}-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`,
      dataset: opts.dataset,
      encoderId,
      method: opts.method,
      epochs: opts.epochs,
      seed: opts.seed,
      batchSize: opts.batchSize,
      learningRate: opts.learningRate,
      minWordCount: opts.minWordCount,
      publishAs: opts.publishAs,
      beamWidth: opts.beamWidth,
      windowShards: opts.windowShards,
      wordVectorsKey,
      model: {
        ...(opts.embedDim ? { embedDim: opts.embedDim } : {}),
        ...(opts.units ? { units: opts.units } : {}),
        ...(opts.merge ? { merge: opts.merge } : {}),
      },
    };
    const show = (p: RunProgress): void =>
      void process.stderr.write(`${formatProgress(p)}
`);
    let result: RunResult;
    if (opts.inProcess) {
      const { tf } = await loadTf();
      result = await trainRun(
        { store: rt.store, tf, log: rt.log, onProgress: show },
        TrainingJob.parse(spec),
      );
    } else {
      result = await submitRun(rt, spec, show, (jobId) =>
        process.stderr
          .write(`submitted run ${spec.runId} (job ${jobId}); waiting for a trainer (capflow worker training)
`),
      );
    }
    printResult(result);
    return result;
  } finally {
    await rt.shutdown.run();
  }
}

async function currentEncoder(store: Parameters<typeof getJson>[0]): Promise<string> {
  const current = await getJson<{ id: string }>(store, "encoders/current.json").catch(() => undefined);
  if (!current)
    throw new Error("no encoder has run yet: start a feature worker first, or pass --encoder <id>");
  return current.id;
}

export function printResult(r: RunResult): void {
  process.stdout.write(
    `run ${r.runId}: ${r.epochs} epochs (resumed from ${r.resumedFrom}), published epoch ${r.best.epoch} (val CIDEr-D ${r.best.cider.toFixed(3)})\n` +
      formatTestScores(r.test) +
      (r.published ? `published: ${r.published}\n` : ""),
  );
}

/** The test split's scores with their 95% intervals, one row per system, as the CLI prints them. */
export function formatTestScores(
  t: Pick<TestReport, "images" | "scores" | "outOfDomain" | "calibration">,
): string {
  const head =
    `test split, ${t.images} images (bootstrap 95% intervals)\n` +
    `  ${"".padEnd(40)} ${"CIDEr-D".padEnd(22)} ${"exact match".padEnd(22)} ${"BLEU-1".padEnd(6)} BLEU-4 empty repeats\n`;
  const rows = SYSTEMS.map((sys) => {
    const s = t.scores[sys];
    return (
      `  ${SYSTEM_LABELS[sys].padEnd(40)} ${formatInterval(s.cider).padEnd(22)} ${formatInterval(s.exact).padEnd(22)} ` +
      `${s.bleu1.value.toFixed(3).padEnd(6)} ${s.bleu4.value.toFixed(3).padEnd(6)} ${String(s.empty).padStart(5)} ${String(s.repeats).padStart(7)}\n`
    );
  }).join("");
  const ood =
    `  out of domain: ${t.outOfDomain.val === null ? "" : `${(t.outOfDomain.val * 100).toFixed(1)}% of val, `}` +
    `${(t.outOfDomain.test * 100).toFixed(1)}% of test ` +
    `(similarity < ${t.calibration.oodThreshold.toFixed(3)}, ${t.calibration.rule})\n`;
  return head + rows + ood;
}
