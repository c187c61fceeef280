import fs from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import type { Redis } from "ioredis";
import { createRedis, keys, LocalStore, Shutdown, type JobInput } from "@capflow/common";
import { type NamedWeight } from "@capflow/ml";
import { submitRun } from "@capflow/cli";
import { committedEpochs, latestCheckpoint, type RunResult } from "@capflow/trainer";
import { CapflowProcess, PRELOAD, sleep } from "./process-control.ts";
import { writeCounts } from "./ledger.ts";

const silent = pino({ level: "silent" });

/** Self-kill at an exact store write (`CAPFLOW_TEST_KILL_BEFORE_COMMIT` / `…_AFTER_COMMIT`). */
export const KILL_PRELOAD = path.join(path.dirname(PRELOAD), "kill-preload.js");

/** A checkpoint's files in the order `saveCheckpoint` writes them, the commit marker last. */
export const CHECKPOINT_FILES = [
  "weights.bin",
  "weights.json",
  "optimizer.bin",
  "optimizer.json",
  "vocab.json",
  "config.json",
  "metrics.json",
  "cursor.json",
  "COMMIT.json",
] as const;
export type CheckpointFile = (typeof CHECKPOINT_FILES)[number];

/**
 * Where a trainer was when it died, read from the store once it is gone (so the state is frozen):
 * still starting (it had not loaded the run), mid-epoch (training or evaluating the epoch after the
 * newest commit, none of that epoch's files written), during a checkpoint upload (some of the next
 * epoch's files written, no commit marker), right after a commit marker (only the aimed kill, which
 * the trainer does itself), or writing the test report after the last epoch.
 */
export type KillKind = "startup" | "mid-epoch" | "checkpoint-upload" | "after-commit" | "report";

/**
 * One fault. Epochs are 1-based. The first three aim at a point; `random` kills `delayMs` after the
 * trainer loaded its data (it then trains), `startup` `delayMs` after the process started.
 */
export type KillStep =
  | { kind: "mid-epoch"; epoch: number; fraction: number }
  | { kind: "checkpoint-upload"; epoch: number; beforeFile: CheckpointFile }
  | { kind: "after-commit"; epoch: number }
  | { kind: "random"; delayMs: number }
  | { kind: "startup"; delayMs: number };

export interface KillRecord {
  planned: KillStep["kind"];
  observed: KillKind;
  /** Newest committed epoch after the kill: where the run resumes. */
  committed: number;
  /** Files of the next epoch's checkpoint the killed trainer put in place, without a commit marker. */
  partialFiles: number;
  /** Whether the killed trainer held the job (it had loaded the run's data). */
  heldJob: boolean;
}

export interface KilledRunOutcome {
  result: RunResult;
  kills: KillRecord[];
  /** Submissions again by the operator after the run failed (BullMQ's stalled limit). */
  resubmits: number;
  /** Why each failed submission said it failed. */
  failures: string[];
  trainerStarts: number;
  /** `resuming from checkpoint` lines of the trainers, in order: the epoch each resumed from. */
  resumedFrom: number[];
}

/** A submitted run as `capflow train` follows it. */
interface Submission {
  state: "pending" | "done" | "failed";
  result?: RunResult;
  error?: string;
  settled: Promise<unknown>;
}

/** Picks the next fault from the newest committed epoch, or ends the faults with undefined. */
export type KillPlanner = (state: { committed: number; kills: number }) => KillStep | undefined;

/** A fixed list of faults, in order. */
export const fixedPlan =
  (steps: KillStep[]): KillPlanner =>
  ({ kills }) =>
    steps[kills];

const LOADED = '"msg":"training data loaded"';

/**
 * Training as operators run it: `capflow worker training` processes (the trainers, under fault) and
 * the run submitted and followed by `submitRun`, the code behind `capflow train --run-id <id>` (job id
 * from the run id), called in the test process so that the model can be smaller than the CLI's flags
 * allow. The test plays the supervisor that restarts a killed trainer, and the operator who submits
 * the run again when it failed.
 */
export class TrainingRig {
  readonly trainers: CapflowProcess[] = [];
  readonly store: LocalStore;
  readonly writeLog: string;
  private readonly redis: Redis;
  private readonly epochSeconds = new Map<number, number>();

  constructor(
    readonly storeDir: string,
    private readonly baseEnv: Record<string, string>,
    private readonly spec: Omit<JobInput<"training">, "runId">,
    /** The trainers' job lock: a killed trainer's run is handed over once it expired. */
    private readonly lockSeconds = 5,
  ) {
    this.store = new LocalStore(storeDir);
    this.writeLog = path.join(storeDir, "..", "writes.log");
    this.redis = createRedis(baseEnv.CAPFLOW_REDIS_URL!, "producer");
  }

  startTrainer(extra: Record<string, string> = {}): CapflowProcess {
    const t = new CapflowProcess(
      ["worker", "training"],
      {
        ...this.baseEnv,
        CAPFLOW_STORE: "local",
        CAPFLOW_STORE_DIR: this.storeDir,
        CAPFLOW_LOG_LEVEL: "info",
        CAPFLOW_TEST_WRITE_LOG: this.writeLog,
        CAPFLOW_TRAINER_LOCK_SECONDS: String(this.lockSeconds),
        NODE_OPTIONS: `--import ${PRELOAD} --import ${KILL_PRELOAD}`,
        ...extra,
      },
      `trainer#${this.trainers.length}`,
    ).start();
    this.trainers.push(t);
    return t;
  }

  /** `capflow train --run-id <runId>`: submits the run and follows it until the job settles. */
  private submit(runId: string): Submission {
    const shutdown = new Shutdown(silent, 10_000);
    const rt = { redis: this.redis, prefix: this.baseEnv.CAPFLOW_QUEUE_PREFIX!, shutdown };
    const sub = { state: "pending" } as Submission;
    sub.settled = submitRun(rt, { ...this.spec, runId }, () => undefined)
      .then(
        (result) => Object.assign(sub, { state: "done", result }),
        (err: unknown) => Object.assign(sub, { state: "failed", error: (err as Error).message }),
      )
      .finally(() => shutdown.run());
    return sub;
  }

  /** Runs `runId` without faults on one trainer; remembers its epoch times to aim mid-epoch kills. */
  async straight(runId: string, timeoutMs: number): Promise<RunResult> {
    const trainer = this.startTrainer();
    const sub = this.submit(runId);
    const started = Date.now();
    try {
      while (sub.state === "pending") {
        if (!trainer.running) throw new Error(`${trainer.label} died:\n${trainer.tail()}`);
        if (Date.now() - started > timeoutMs) throw new Error(`run ${runId} not done after ${timeoutMs} ms`);
        await sleep(100);
      }
      if (sub.state === "failed") throw new Error(`run ${runId} failed: ${sub.error}\n${trainer.tail()}`);
      for (const h of sub.result!.history) this.epochSeconds.set(h.epoch, h.seconds);
      return sub.result!;
    } finally {
      await trainer.terminate();
      await sub.settled;
    }
  }

  /**
   * Runs `runId` to the end while injecting the planner's faults, one SIGKILL per freshly started
   * trainer (as a supervisor restarts it), then lets one more trainer finish it. BullMQ hands a killed
   * trainer's job to the next one once its lock expired; it fails a job that stalled more than
   * `maxStalledCount` (1) times, and then the run is submitted again, as an operator would.
   */
  async withKills(runId: string, plan: KillPlanner, timeoutMs: number): Promise<KilledRunOutcome> {
    const started = Date.now();
    const out = { kills: [] as KillRecord[], resubmits: 0, failures: [] as string[], trainerStarts: 0 };
    let sub = this.submit(runId);
    /** The operator: submits again when the run failed. True once it succeeded. */
    const operator = async (): Promise<boolean> => {
      if (sub.state === "pending") return false;
      if (sub.state === "done") return true;
      out.failures.push(sub.error ?? "");
      if (++out.resubmits > 2 * out.kills.length + 2)
        throw new Error(`run ${runId} failed ${out.resubmits} times: ${out.failures.join("; ")}`);
      await sub.settled;
      sub = this.submit(runId);
      return false;
    };
    /** One poll while a fault is pending: the run must not end before it hits. */
    const tick = async () => {
      if (Date.now() - started > timeoutMs)
        throw new Error(`run ${runId} not done after ${timeoutMs} ms\n${this.tails()}`);
      if (await operator()) throw new Error(`run ${runId} ended before fault ${out.kills.length + 1} hit`);
      await sleep(20);
    };
    const newest = async () => (await committedEpochs(this.store, runId))[0] ?? 0;

    for (;;) {
      const committed = await newest();
      const step = committed < this.spec.epochs ? plan({ committed, kills: out.kills.length }) : undefined;
      if (!step) break;
      const env: Record<string, string> = {};
      if (step.kind === "checkpoint-upload")
        env.CAPFLOW_TEST_KILL_BEFORE_COMMIT = keys.runEpoch(runId, step.epoch) + step.beforeFile;
      if (step.kind === "after-commit")
        env.CAPFLOW_TEST_KILL_AFTER_COMMIT = keys.runEpoch(runId, step.epoch) + "COMMIT.json";
      const trainer = this.startTrainer(env);
      out.trainerStarts++;
      const bootedAt = Date.now();

      switch (step.kind) {
        case "startup":
          while (trainer.running && Date.now() - bootedAt < step.delayMs) await tick();
          break;
        case "random": {
          while (trainer.running && !trainer.output.includes(LOADED)) await tick();
          const loadedAt = Date.now();
          while (trainer.running && Date.now() - loadedAt < step.delayMs) await tick();
          break;
        }
        case "mid-epoch": {
          // The epoch starts once this trainer loaded the run and the one before it is committed.
          for (;;) {
            if (!trainer.running) break;
            const c = await newest();
            if (c > step.epoch - 1)
              throw new Error(`kill planned in epoch ${step.epoch}, but ${c} is committed`);
            if (c === step.epoch - 1 && trainer.output.includes(LOADED)) break;
            await tick();
          }
          const inEpoch = Date.now();
          const ms = step.fraction * (this.epochSeconds.get(step.epoch) ?? 1) * 1000;
          while (trainer.running && Date.now() - inEpoch < ms) await tick();
          break;
        }
        case "checkpoint-upload":
        case "after-commit":
          // The trainer kills itself at the planned write.
          while (trainer.running) await tick();
          break;
      }
      await trainer.kill();
      if (trainer.exits.at(-1)?.signal !== "SIGKILL")
        throw new Error(
          `${trainer.label} exited by itself (${JSON.stringify(trainer.exits)}):\n${trainer.tail()}`,
        );
      out.kills.push(await this.classify(runId, step, trainer));
    }

    // No more faults: one trainer takes the run to its end.
    const last = this.startTrainer();
    out.trainerStarts++;
    try {
      while (!(await operator())) {
        if (!last.running) throw new Error(`the last trainer died:\n${last.tail()}`);
        if (Date.now() - started > timeoutMs)
          throw new Error(`run ${runId} not done after ${timeoutMs} ms\n${this.tails()}`);
        await sleep(100);
      }
    } finally {
      await last.terminate();
      await sub.settled;
    }
    const resumedFrom = this.trainers.flatMap((t) =>
      [...t.output.matchAll(/"epoch":(\d+)[^\n]*"msg":"resuming from checkpoint"/g)].map((m) => Number(m[1])),
    );
    return { ...out, result: sub.result!, resumedFrom };
  }

  private async classify(runId: string, step: KillStep, trainer: CapflowProcess): Promise<KillRecord> {
    const committed = (await committedEpochs(this.store, runId))[0] ?? 0;
    // Files of the next checkpoint that this trainer put in place (the write log names the writer's
    // pid): a torn folder left by an earlier kill does not count.
    const nextDir = path.join(this.storeDir, keys.runEpoch(runId, committed + 1));
    const log = await fs.readFile(this.writeLog, "utf8").catch(() => "");
    const partialFiles = log
      .split("\n")
      .filter((line) => line.startsWith(`${trainer.pid} ${nextDir}`)).length;
    const heldJob = trainer.output.includes(LOADED);
    // The aimed self-kills are what they were aimed at (one before the first file leaves 0 files).
    const observed: KillKind =
      step.kind === "checkpoint-upload" || step.kind === "after-commit"
        ? step.kind
        : !heldJob
          ? "startup"
          : partialFiles > 0
            ? "checkpoint-upload"
            : committed === this.spec.epochs
              ? "report"
              : "mid-epoch";
    return { planned: step.kind, observed, committed, partialFiles, heldJob };
  }

  /**
   * How many times the commit marker of each epoch of `runId` was written. The write log's line follows
   * the rename into place, so a SIGKILL landing between the two leaves a marker the log never saw (seen
   * once in CI: a random kill observed with that epoch just committed). Such a marker, present in the
   * store with a kill observed right at it, counts once.
   */
  async commitCounts(
    runId: string,
    kills: ReadonlyArray<{ committed: number }> = [],
  ): Promise<Record<number, number>> {
    const counts = await writeCounts(this.writeLog, this.storeDir);
    const byEpoch: Record<number, number> = {};
    for (const [key, n] of counts) {
      const m = /^runs\/([^/]+)\/epoch-(\d+)\/COMMIT\.json$/.exec(key);
      if (m?.[1] === runId) byEpoch[Number(m[2])] = n;
    }
    for (const { committed } of kills) {
      if (committed > 0 && byEpoch[committed] === undefined) {
        if (await this.store.head(`runs/${runId}/epoch-${committed}/COMMIT.json`)) byEpoch[committed] = 1;
      }
    }
    return byEpoch;
  }

  tails(): string {
    return this.trainers
      .slice(-3)
      .map((p) => `--- ${p.label}\n${p.tail(1500)}`)
      .join("\n");
  }

  async close(): Promise<void> {
    await Promise.all(this.trainers.map((p) => p.kill()));
    this.redis.disconnect();
  }
}

/** Largest absolute difference between two lists of named weights (same names, same order). */
export function maxWeightDiff(a: NamedWeight[], b: NamedWeight[]): number {
  if (a.map((w) => w.name).join() !== b.map((w) => w.name).join())
    throw new Error("the two weight lists name different weights");
  let max = 0;
  a.forEach((w, i) => {
    const other = b[i]!.data;
    if (other.length !== w.data.length) throw new Error(`${w.name}: sizes differ`);
    for (let k = 0; k < w.data.length; k++) max = Math.max(max, Math.abs(w.data[k]! - other[k]!));
  });
  return max;
}

/** The newest checkpoints of two runs: weights and Adam's moments (largest difference), step, beta powers. */
export async function compareCheckpoints(store: LocalStore, runA: string, runB: string) {
  const [a, b] = [await latestCheckpoint(store, runA), await latestCheckpoint(store, runB)];
  if (!a || !b) throw new Error("a run has no checkpoint");
  return {
    epochs: [a.epoch, b.epoch],
    iterations: [a.optimizer.iterations, b.optimizer.iterations],
    betaPowers: [
      [a.optimizer.beta1Power, a.optimizer.beta2Power],
      [b.optimizer.beta1Power, b.optimizer.beta2Power],
    ],
    weights: maxWeightDiff(a.weights, b.weights),
    optimizerSlots: maxWeightDiff(a.optimizer.slots, b.optimizer.slots),
  };
}

const METRICS = ["trainLoss", "valLoss", "bleu1", "bleu4", "cider"] as const;

/** Per-epoch metrics of two runs side by side: the largest difference of each loss and score. */
export function compareHistories(a: RunResult["history"], b: RunResult["history"]) {
  const diff = Object.fromEntries(METRICS.map((f) => [f, 0])) as Record<(typeof METRICS)[number], number>;
  if (a.length !== b.length) throw new Error(`histories of ${a.length} and ${b.length} epochs`);
  a.forEach((row, i) => {
    for (const f of METRICS) diff[f] = Math.max(diff[f], Math.abs(row[f] - b[i]![f]));
  });
  return diff;
}
