import { createHash } from "node:crypto";
import { getJson, keys, putJson, type ObjectStore } from "@capflow/common";
import {
  decodeWeights,
  encodeWeights,
  type NamedWeight,
  type OptimizerState,
  type VocabularyJSON,
  type WeightSpec,
} from "@capflow/ml";

export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  cider: number;
  seconds: number;
  captionsPerSecond: number;
}

export interface Checkpoint {
  runId: string;
  /** Epochs completed (1-based): the run resumes at `epoch + 1`. */
  epoch: number;
  weights: NamedWeight[];
  optimizer: OptimizerState;
  vocab: VocabularyJSON;
  /** The run spec and the resolved model config: everything needed to rebuild the model. */
  config: Record<string, unknown>;
  /** Every epoch's metrics so far. */
  history: EpochMetrics[];
}

/** The commit marker: written last, naming every file with its hash. */
interface Commit {
  epoch: number;
  files: Record<string, string>;
}

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const COMMIT = "COMMIT.json";

/**
 * A checkpoint is a folder `runs/<run>/epoch-<n>/`. Its files are written first, the commit marker
 * (with each file's sha256) last: a trainer killed mid-upload leaves a folder without a marker, or
 * with files that do not match it, and loading skips it for the previous epoch. Never torn.
 */
export async function saveCheckpoint(store: ObjectStore, ckpt: Checkpoint): Promise<string> {
  const dir = keys.runEpoch(ckpt.runId, ckpt.epoch);
  const weights = encodeWeights(ckpt.weights);
  const slots = encodeWeights(ckpt.optimizer.slots);
  const files: Record<string, Uint8Array | string> = {
    "weights.bin": weights.data,
    "weights.json": JSON.stringify(weights.specs),
    "optimizer.bin": slots.data,
    "optimizer.json": JSON.stringify({
      iterations: ckpt.optimizer.iterations,
      beta1Power: ckpt.optimizer.beta1Power,
      beta2Power: ckpt.optimizer.beta2Power,
      specs: slots.specs,
    }),
    "vocab.json": JSON.stringify(ckpt.vocab),
    "config.json": JSON.stringify(ckpt.config),
    "metrics.json": JSON.stringify(ckpt.history),
    // The data cursor: order is a pure function of (seed, epoch), so the next epoch is the cursor.
    "cursor.json": JSON.stringify({ nextEpoch: ckpt.epoch + 1 }),
  };
  const commit: Commit = { epoch: ckpt.epoch, files: {} };
  for (const [name, body] of Object.entries(files)) {
    await store.put(dir + name, body);
    commit.files[name] = sha(body);
  }
  await putJson(store, dir + COMMIT, commit);
  return dir;
}

/** Epochs of a run that carry a commit marker, newest first (not yet verified). */
export async function committedEpochs(store: ObjectStore, runId: string): Promise<number[]> {
  const epochs: number[] = [];
  for await (const { key } of store.list(keys.runPrefix(runId))) {
    const m = /\/epoch-(\d+)\/COMMIT\.json$/.exec(key);
    if (m) epochs.push(Number(m[1]));
  }
  return epochs.sort((a, b) => b - a);
}

/** Loads one epoch, verifying every file against the commit marker. */
export async function loadCheckpoint(store: ObjectStore, runId: string, epoch: number): Promise<Checkpoint> {
  const dir = keys.runEpoch(runId, epoch);
  const commit = await getJson<Commit>(store, dir + COMMIT);
  const read = async (name: string) => {
    const body = await store.get(dir + name);
    if (sha(body) !== commit.files[name])
      throw new Error(`checkpoint ${dir}${name} does not match its commit marker`);
    return body;
  };
  const specs = JSON.parse((await read("weights.json")).toString()) as WeightSpec[];
  const optimizer = JSON.parse((await read("optimizer.json")).toString()) as Omit<OptimizerState, "slots"> & {
    specs: WeightSpec[];
  };
  return {
    runId,
    epoch,
    weights: decodeWeights(specs, await read("weights.bin")),
    optimizer: {
      iterations: optimizer.iterations,
      beta1Power: optimizer.beta1Power,
      beta2Power: optimizer.beta2Power,
      slots: decodeWeights(optimizer.specs, await read("optimizer.bin")),
    },
    vocab: JSON.parse((await read("vocab.json")).toString()) as VocabularyJSON,
    config: JSON.parse((await read("config.json")).toString()) as Record<string, unknown>,
    history: JSON.parse((await read("metrics.json")).toString()) as EpochMetrics[],
  };
}

/** The newest complete checkpoint of a run, or undefined: torn ones are skipped (and reported). */
export async function latestCheckpoint(
  store: ObjectStore,
  runId: string,
  onSkip?: (epoch: number, why: string) => void,
): Promise<Checkpoint | undefined> {
  for (const epoch of await committedEpochs(store, runId)) {
    try {
      return await loadCheckpoint(store, runId, epoch);
    } catch (err) {
      onSkip?.(epoch, (err as Error).message);
    }
  }
  return undefined;
}
