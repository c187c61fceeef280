import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import { CommonEnv, getJson, startRuntime, TrainingJob, type JobInput } from "@capflow/common";
import { loadTf } from "@capflow/ml";
import { trainRun, type RunProgress, type RunResult } from "@capflow/trainer";
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
  inProcess: boolean;
  /** A GloVe-format text file; uploaded to the store so any trainer can read it. */
  wordVectors?: string;
  embedDim?: number;
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
      wordVectorsKey,
      model: opts.embedDim ? { embedDim: opts.embedDim } : {},
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
  const row = (
    label: string,
    s: { bleu1: number; bleu2: number; bleu3: number; bleu4: number; cider: number },
  ) =>
    `  ${label.padEnd(22)} ${[s.bleu1, s.bleu2, s.bleu3, s.bleu4, s.cider].map((v) => v.toFixed(3).padStart(7)).join(" ")}\n`;
  process.stdout.write(
    `run ${r.runId}: ${r.epochs} epochs (resumed from ${r.resumedFrom}), best epoch ${r.best.epoch} (val CIDEr-D ${r.best.cider.toFixed(3)})\n` +
      `test split, ${r.test.images} images:     BLEU-1  BLEU-2  BLEU-3  BLEU-4 CIDEr-D\n` +
      row("model, greedy", r.test.greedy) +
      row("model, beam", r.test.beam) +
      row("retrieval baseline", r.test.baseline) +
      (r.published ? `published: ${r.published}\n` : ""),
  );
}
