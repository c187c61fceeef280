/**
 * The caption decoder: the tutorial's "merge" model (Brownlee's Flickr8k photo-caption generator),
 *
 *   image (2048) → Dropout 0.5 → Dense 256 relu ─┐
 *   tokens → Embedding 200 (mask 0) → Dropout 0.5 → LSTM 256 ─┴─ add → Dense 256 relu → Dense vocab softmax
 *
 * and a residual variant (`merge: "residual"`, the trainer's default) with the same weights:
 *
 *   image (2048) → Dropout 0.5 → Dense 256 (linear) ─┐
 *   tokens → … → LSTM 256 ──────────────────────────┴─ add = s → s + relu(Dense 256 (s)) → Dense vocab softmax
 *
 * Why: with few images per caption (4 training styles of each emoji) two relu layers between the
 * image and the words cost recognition. On the demo's features an image-only classifier shaped like
 * the tutorial's path named 31-33% of the Fluent test emoji; a linear image projection with a residual
 * relu layer 41-45%, a linear softmax probe 46% (numpy study, docs/quality.md).
 *
 * written with raw tf ops over named variables rather than tfjs-layers, because
 * - one set of weights serves two training methods (teacher forcing over whole captions, and the
 *   tutorial's one-sample-per-prefix method) and a step decoder;
 * - a tfjs-layers step model taking the LSTM's `initialState` as inputs fails at `predict()` in 4.22,
 *   while a raw-op decoder carrying (h, c) works.
 *
 * The trainer decodes with this model (greedyDecode, beamSearch: decode-search.ts's searches over
 * `stepper`). The caption worker decodes on ONNX Runtime (onnx-decoder.ts, same searches): on wasm a
 * step is compute-bound on one thread even at batch 1, and 64 rows at once gave only 1.22× the
 * captions/s of one (171 vs 209, docs/benchmarks.md).
 *
 * The LSTM follows Keras: gate order i, f, c, o; sigmoid gates (tfjs-layers defaults to hardSigmoid —
 * we use `sigmoid` explicitly, as Keras does); glorot-uniform kernel, orthogonal recurrent kernel,
 * zero bias with the forget gate's set to 1 (`unit_forget_bias`). Keras names are kept for the weights so
 * that Keras weights can be ported. Masking (`mask_zero=True`) carries (h, c) through padding steps, so a
 * pre-padded prefix gives exactly the state of the unpadded prefix.
 */
import { z } from "zod";
import type * as tfjs from "@tensorflow/tfjs";
import { END_ID, PAD_ID, START_ID } from "../text/vocabulary.ts";
import {
  beamSearch,
  bestOfRows,
  greedySearch,
  runSync,
  scoreSearch,
  type ScoreResult,
  type BeamOptions,
  type BeamResult,
  type DecodeResult,
  type SearchConfig,
  type StepRequest,
} from "./decode-search.ts";

type Tf = typeof tfjs;
type Tensor = tfjs.Tensor;
type Tensor2D = tfjs.Tensor2D;
type Variable = tfjs.Variable;

/** How the image meets the words (see the top of this file). */
export const CaptionMerge = z.enum(["tutorial", "residual"]);
export type CaptionMerge = z.output<typeof CaptionMerge>;

export const CaptionModelConfig = z.object({
  /** Vocabulary size, special tokens included (`<pad>`=0, `<start>`, `<end>`, `<unk>`). */
  vocabSize: z.number().int().min(4),
  /** Longest caption in tokens, `<start>` and `<end>` included (the tutorial's `max_length`). */
  maxLength: z.number().int().min(2),
  featureDim: z.number().int().positive().default(2048),
  embedDim: z.number().int().positive().default(200),
  units: z.number().int().positive().default(256),
  dropout: z.number().min(0).max(0.95).default(0.5),
  /**
   * How the image meets the words: the tutorial's relu image path and relu layer, or a linear image
   * path and a residual relu layer (see the top of this file). The default stays the tutorial's so
   * that checkpoints written before the option load as what they are; the trainer picks `residual`.
   */
  merge: CaptionMerge.default("tutorial"),
  learningRate: z.number().positive().default(1e-3),
  /** Seeds the initialisers and every dropout mask: two runs with the same seed and data match. */
  seed: z.number().int().default(1),
  startId: z.number().int().nonnegative().default(START_ID),
  endId: z.number().int().nonnegative().default(END_ID),
  /** Optional frozen word vectors, row-major [vocabSize × embedDim] (e.g. GloVe); row 0 is padding. */
  pretrainedEmbeddings: z.instanceof(Float32Array).optional(),
});
export type CaptionModelConfig = z.output<typeof CaptionModelConfig>;
export type CaptionModelConfigInput = z.input<typeof CaptionModelConfig>;

/** One weight or optimizer slot, by its logical name (e.g. `lstm/kernel`, `lstm/kernel/m`). */
export interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Adam's state: moments per trainable weight, step count, and the running beta powers. */
export interface OptimizerState {
  iterations: number;
  beta1Power: number;
  beta2Power: number;
  /** `<weight>/m` for every trainable weight, then `<weight>/v`, in the model's variable order. */
  slots: NamedWeight[];
}

/** Teacher forcing: whole captions, `<start> w1 … wn <end>` right-padded with 0, one row per caption. */
export interface TeacherBatch {
  method: "teacher";
  /** [size × featureDim] image features, one row per caption. */
  features: Float32Array;
  /** [size × width] token rows; width ≤ maxLength. Trailing all-pad columns are trimmed. */
  tokens: Int32Array;
  size: number;
  width: number;
}

/** The tutorial's method: one sample per (prefix, next word), prefixes pre-padded to maxLength. */
export interface PrefixBatch {
  method: "prefix";
  features: Float32Array;
  /** [size × maxLength] prefixes, left-padded with 0. */
  prefixes: Int32Array;
  targets: Int32Array;
  size: number;
}

export type TrainBatch = TeacherBatch | PrefixBatch;

export type { BeamResult, DecodeResult } from "./decode-search.ts";

export interface CaptionModel {
  readonly config: CaptionModelConfig;
  /** One optimizer step; returns the mean per-token cross-entropy of the batch (before the step). */
  trainBatch(batch: TrainBatch): number;
  /** Mean per-token cross-entropy without dropout and without updating anything; also returns the count. */
  evaluate(batch: TrainBatch): { loss: number; count: number };
  /** Next-word log-probabilities [n × vocab] for images + token prefixes (no padding), as at inference. */
  nextWordLogProbs(features: Float32Array, prefixes: number[][]): Float32Array;
  greedyDecode(features: Float32Array, n: number, opts?: { maxLength?: number }): DecodeResult;
  beamSearch(feature: Float32Array, opts: BeamOptions): BeamResult[];
  /** Log-likelihood of word-id sequences, row i under feature row i [n × featureDim]. */
  scoreSequences(features: Float32Array, sequences: readonly (readonly number[])[]): ScoreResult;
  /** Sets the optimizer's learning rate for the following steps (the schedule's job, lr-schedule.ts). */
  setLearningRate(lr: number): void;
  getWeights(): NamedWeight[];
  setWeights(weights: NamedWeight[]): void;
  getOptimizerState(): Promise<OptimizerState>;
  setOptimizerState(state: OptimizerState): Promise<void>;
  dispose(): void;
}

const TRAINABLE = [
  "image/kernel",
  "image/bias",
  "embedding/embeddings",
  "lstm/kernel",
  "lstm/recurrent_kernel",
  "lstm/bias",
  "decoder/kernel",
  "decoder/bias",
  "output/kernel",
  "output/bias",
] as const;
type WeightName = (typeof TRAINABLE)[number];

let instances = 0;

/** Build a fresh model; weights are initialised deterministically from `config.seed`. */
export function createCaptionModel(tf: Tf, config: CaptionModelConfigInput): CaptionModel {
  return new MergeCaptionModel(tf, CaptionModel_parse(config));
}

function CaptionModel_parse(config: CaptionModelConfigInput): CaptionModelConfig {
  const parsed = CaptionModelConfig.safeParse(config);
  if (!parsed.success) throw new Error(`invalid CaptionModelConfig: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  if (c.pretrainedEmbeddings && c.pretrainedEmbeddings.length !== c.vocabSize * c.embedDim) {
    throw new Error(
      `pretrainedEmbeddings has ${c.pretrainedEmbeddings.length} values, expected vocabSize × embedDim = ${c.vocabSize * c.embedDim}`,
    );
  }
  return c;
}

/** Mix two integers into a 31-bit seed (splitmix-style), so dropout masks differ per step and call. */
function mixSeed(a: number, b: number, c: number): number {
  let h =
    (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^
      Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^
      Math.imul(c + 1, 0x27d4eb2f)) >>>
    0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

class MergeCaptionModel implements CaptionModel {
  private readonly vars = new Map<WeightName, Variable>();
  private frozenEmbeddings: Tensor2D | undefined;
  private readonly prefix: string;
  private optimizer: tfjs.AdamOptimizer;
  private dropoutCall = 0;

  constructor(
    private readonly tf: Tf,
    readonly config: CaptionModelConfig,
  ) {
    this.prefix = `capflow_caption_${instances++}`;
    const { featureDim: F, embedDim: E, units: U, vocabSize: V, seed } = config;
    const glorot = (i: number) => tf.initializers.glorotUniform({ seed: seed * 101 + i });
    const init: Record<WeightName, () => Tensor> = {
      "image/kernel": () => glorot(0).apply([F, U]),
      "image/bias": () => tf.zeros([U]),
      // Keras Embedding default: uniform(-0.05, 0.05).
      "embedding/embeddings": () => tf.randomUniform([V, E], -0.05, 0.05, "float32", seed * 101 + 1),
      "lstm/kernel": () => glorot(2).apply([E, 4 * U]),
      "lstm/recurrent_kernel": () => tf.initializers.orthogonal({ seed: seed * 101 + 3 }).apply([U, 4 * U]),
      "lstm/bias": () => tf.concat([tf.zeros([U]), tf.ones([U]), tf.zeros([2 * U])]),
      "decoder/kernel": () => glorot(4).apply([U, U]),
      "decoder/bias": () => tf.zeros([U]),
      "output/kernel": () => glorot(5).apply([U, V]),
      "output/bias": () => tf.zeros([V]),
    };
    for (const name of TRAINABLE) {
      if (name === "embedding/embeddings" && config.pretrainedEmbeddings) continue;
      const value = tf.tidy(init[name]);
      this.vars.set(name, tf.variable(value, true, `${this.prefix}/${name}`));
      value.dispose();
    }
    this.frozenEmbeddings = config.pretrainedEmbeddings
      ? tf.tensor2d(config.pretrainedEmbeddings, [V, E])
      : undefined;
    this.optimizer = tf.train.adam(config.learningRate);
  }

  private v(name: WeightName): Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`weight ${name} is not a trainable variable of this model`);
    return v;
  }

  private embeddings(): Tensor2D {
    return this.frozenEmbeddings ?? (this.v("embedding/embeddings") as Tensor as Tensor2D);
  }

  private dropout<T extends Tensor>(x: T, training: boolean): T {
    if (!training || this.config.dropout === 0) return x;
    const seed = mixSeed(this.config.seed, this.optimizer.iterations, this.dropoutCall++);
    return this.tf.dropout(x, this.config.dropout, undefined, seed) as T;
  }

  /** [n, F] → [n, U]: Dropout → Dense (relu for the tutorial's merge, linear for the residual one). */
  private imageBranch(features: Tensor2D, training: boolean): Tensor2D {
    const tf = this.tf;
    return tf.fused.matMul({
      a: this.dropout(features, training),
      b: this.v("image/kernel") as Tensor as Tensor2D,
      bias: this.v("image/bias"),
      activation: this.config.merge === "tutorial" ? "relu" : "linear",
    }) as Tensor2D;
  }

  /** [n, U] + [n, U] → logits [n, V]: add → Dense relu (plus the sum, for the residual merge) → Dense. */
  private head(h: Tensor2D, image: Tensor2D): Tensor2D {
    const tf = this.tf;
    const merged = tf.add(h, image);
    const dense = tf.fused.matMul({
      a: merged,
      b: this.v("decoder/kernel") as Tensor as Tensor2D,
      bias: this.v("decoder/bias"),
      activation: "relu",
    });
    const hidden = this.config.merge === "tutorial" ? dense : tf.add(merged, dense);
    return tf.fused.matMul({
      a: hidden as Tensor2D,
      b: this.v("output/kernel") as Tensor as Tensor2D,
      bias: this.v("output/bias"),
    }) as Tensor2D;
  }

  /** One LSTM step from the precomputed input projection `xw` [n, 4U]. */
  private lstmStep(xw: Tensor2D, h: Tensor2D, c: Tensor2D): [Tensor2D, Tensor2D] {
    const tf = this.tf;
    const z = tf.add(xw, tf.matMul(h, this.v("lstm/recurrent_kernel") as Tensor as Tensor2D));
    const [zi, zf, zg, zo] = tf.split(z, 4, 1) as [Tensor2D, Tensor2D, Tensor2D, Tensor2D];
    const c2 = tf.add(tf.mul(tf.sigmoid(zf), c), tf.mul(tf.sigmoid(zi), tf.tanh(zg))) as Tensor2D;
    const h2 = tf.mul(tf.sigmoid(zo), tf.tanh(c2)) as Tensor2D;
    return [h2, c2];
  }

  /** Embed [n, T] token ids and project them for the LSTM in one matmul: → T tensors [n, 4U]. */
  private inputProjections(ids: Tensor2D, training: boolean): Tensor2D[] {
    const tf = this.tf;
    const [n, T] = ids.shape;
    const U = this.config.units;
    const emb = this.dropout(tf.gather(this.embeddings(), ids.reshape([n * T])), training);
    const xw = tf.fused.matMul({
      a: emb as Tensor2D,
      b: this.v("lstm/kernel") as Tensor as Tensor2D,
      bias: this.v("lstm/bias"),
    });
    return tf.unstack(xw.reshape([n, T, 4 * U]), 1) as Tensor2D[];
  }

  /**
   * Teacher forcing: per-step logits for every position of right-padded rows. Padding only follows the
   * caption, so it cannot change an earlier step and no masking is needed inside the loop.
   */
  private teacherLogits(features: Tensor2D, inputs: Tensor2D, training: boolean): Tensor2D {
    const tf = this.tf;
    const [n, T] = inputs.shape;
    const U = this.config.units;
    const image = this.imageBranch(features, training);
    const xs = this.inputProjections(inputs, training);
    let h = tf.zeros([n, U]) as Tensor2D;
    let c = tf.zeros([n, U]) as Tensor2D;
    const hs: Tensor2D[] = [];
    for (const x of xs) {
      [h, c] = this.lstmStep(x, h, c);
      hs.push(h);
    }
    // [n, T, U] + image broadcast over time, flattened to [n·T, U] for the head.
    const H = tf.stack(hs, 1).reshape([n * T, U]) as Tensor2D;
    const img = tf.tile(image.reshape([n, 1, U]), [1, T, 1]).reshape([n * T, U]) as Tensor2D;
    return this.head(H, img);
  }

  /** Tutorial method: pre-padded prefixes [n, L], masked LSTM, logits of the last state. */
  private prefixLogits(features: Tensor2D, prefixes: Tensor2D, training: boolean): Tensor2D {
    const tf = this.tf;
    const [n] = prefixes.shape;
    const U = this.config.units;
    const image = this.imageBranch(features, training);
    const xs = this.inputProjections(prefixes, training);
    const masks = tf.unstack(
      tf.notEqual(prefixes, PAD_ID).toFloat().reshape([n, prefixes.shape[1], 1]),
      1,
    ) as Tensor2D[];
    let h = tf.zeros([n, U]) as Tensor2D;
    let c = tf.zeros([n, U]) as Tensor2D;
    xs.forEach((x, t) => {
      const [h2, c2] = this.lstmStep(x, h, c);
      const m = masks[t]!;
      // mask_zero: a padding step carries the state through unchanged.
      h = tf.add(h, tf.mul(m, tf.sub(h2, h)));
      c = tf.add(c, tf.mul(m, tf.sub(c2, c)));
    });
    return this.head(h, image);
  }

  /** Mean masked cross-entropy and the token count, as tensors. */
  private lossOf(batch: TrainBatch, training: boolean): { loss: tfjs.Scalar; count: number } {
    const tf = this.tf;
    const F = this.config.featureDim;
    const features = tf.tensor2d(batch.features, [batch.size, F]);
    let logits: Tensor2D;
    let targets: tfjs.Tensor1D;
    if (batch.method === "teacher") {
      const width = trimmedWidth(batch.tokens, batch.size, batch.width);
      const rows = tf
        .tensor2d(batch.tokens, [batch.size, batch.width], "int32")
        .slice([0, 0], [batch.size, width]);
      const inputs = rows.slice([0, 0], [batch.size, width - 1]) as Tensor2D;
      targets = rows.slice([0, 1], [batch.size, width - 1]).reshape([-1]) as tfjs.Tensor1D;
      logits = this.teacherLogits(features, inputs, training);
    } else {
      const prefixes = tf.tensor2d(batch.prefixes, [batch.size, batch.prefixes.length / batch.size], "int32");
      targets = tf.tensor1d(batch.targets, "int32");
      logits = this.prefixLogits(features, prefixes, training);
    }
    const mask = tf.notEqual(targets, PAD_ID).toFloat();
    const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, this.config.vocabSize)), 1);
    const count = countNonPad(
      batch.method === "teacher" ? batch.tokens : batch.targets,
      batch.method === "teacher" ? batch.width : 1,
    );
    const loss = tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), Math.max(1, count)) as tfjs.Scalar;
    return { loss, count };
  }

  trainBatch(batch: TrainBatch): number {
    this.dropoutCall = 0;
    const varList = TRAINABLE.filter((n) => this.vars.has(n)).map((n) => this.v(n));
    const cost = this.optimizer.minimize(() => this.lossOf(batch, true).loss, true, varList);
    if (!cost) throw new Error("optimizer returned no cost");
    const value = cost.dataSync()[0]!;
    cost.dispose();
    return value;
  }

  evaluate(batch: TrainBatch): { loss: number; count: number } {
    return this.tf.tidy(() => {
      const { loss, count } = this.lossOf(batch, false);
      return { loss: loss.dataSync()[0]!, count };
    });
  }

  nextWordLogProbs(features: Float32Array, prefixes: number[][]): Float32Array {
    const tf = this.tf;
    const n = prefixes.length;
    const L = Math.max(1, ...prefixes.map((p) => p.length));
    const padded = new Int32Array(n * L);
    prefixes.forEach((p, i) => padded.set(p, i * L + (L - p.length)));
    return tf.tidy(() => {
      const logits = this.prefixLogits(
        tf.tensor2d(features, [n, this.config.featureDim]),
        tf.tensor2d(padded, [n, L], "int32"),
        false,
      );
      return tf.logSoftmax(logits).dataSync() as Float32Array;
    });
  }

  /**
   * A step decoder over tfjs tensors for `n` rows: the image projection and (h, c), rebuilt by a request's
   * parents before each step. `step` returns next-word log-probs [rows, V]; `dispose` frees the state.
   */
  private stepper(
    features: Float32Array,
    n: number,
  ): { step(req: StepRequest): Float32Array; dispose(): void } {
    const tf = this.tf;
    const U = this.config.units;
    let state = tf.tidy(() => ({
      image: this.imageBranch(tf.tensor2d(features, [n, this.config.featureDim]), false),
      h: tf.zeros([n, U]) as Tensor2D,
      c: tf.zeros([n, U]) as Tensor2D,
    }));
    const dispose = () => tf.dispose([state.image, state.h, state.c]);
    return {
      step: (req) => {
        const next = tf.tidy(() => {
          let { image, h, c } = state;
          if (req.parents) {
            const idx = tf.tensor1d(req.parents as number[], "int32");
            [image, h, c] = [tf.gather(image, idx), tf.gather(h, idx), tf.gather(c, idx)];
          }
          const x = tf.gather(this.embeddings(), tf.tensor1d(req.tokens, "int32"));
          const xw = tf.fused.matMul({
            a: x as Tensor2D,
            b: this.v("lstm/kernel") as Tensor as Tensor2D,
            bias: this.v("lstm/bias"),
          }) as Tensor2D;
          const [h2, c2] = this.lstmStep(xw, h, c);
          const logp = tf.logSoftmax(this.head(h2, image)).dataSync() as Float32Array;
          return { image: tf.keep(image), h: tf.keep(h2), c: tf.keep(c2), logp };
        });
        if (next.image !== state.image) state.image.dispose();
        tf.dispose([state.h, state.c]);
        state = next;
        return next.logp;
      },
      dispose,
    };
  }

  private searchConfig(maxLength: number | undefined): SearchConfig {
    const { vocabSize, startId, endId } = this.config;
    return { vocabSize, startId, endId, maxLength: maxLength ?? this.config.maxLength };
  }

  greedyDecode(features: Float32Array, n: number, opts: { maxLength?: number } = {}): DecodeResult {
    const stepper = this.stepper(features, n);
    try {
      const V = this.config.vocabSize;
      return runSync(greedySearch(n, this.searchConfig(opts.maxLength)), (req) => {
        const logProbs = stepper.step(req);
        return { ...bestOfRows(logProbs, V), logProbs };
      });
    } finally {
      stepper.dispose();
    }
  }

  beamSearch(feature: Float32Array, opts: BeamOptions): BeamResult[] {
    const stepper = this.stepper(feature, 1);
    try {
      return runSync(beamSearch(this.searchConfig(opts.maxLength), opts), (req) => stepper.step(req));
    } finally {
      stepper.dispose();
    }
  }

  scoreSequences(features: Float32Array, sequences: readonly (readonly number[])[]): ScoreResult {
    const stepper = this.stepper(features, sequences.length);
    try {
      return runSync(scoreSearch(sequences, this.searchConfig(undefined)), (req) => stepper.step(req));
    } finally {
      stepper.dispose();
    }
  }

  setLearningRate(lr: number): void {
    if (!(lr > 0)) throw new Error(`learning rate must be positive, got ${lr}`);
    // tfjs's Adam reads `learningRate` at every step; there is no public setter.
    (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
  }

  getWeights(): NamedWeight[] {
    const weights = [...this.vars.entries()].map(([name, v]) => ({
      name,
      shape: [...v.shape],
      data: v.dataSync() as Float32Array,
    }));
    // Frozen word vectors are part of the model too: a checkpoint or published model without them
    // would caption with random embeddings wherever the vectors file is not at hand.
    if (this.frozenEmbeddings) {
      weights.push({
        name: "embedding/embeddings",
        shape: [...this.frozenEmbeddings.shape],
        data: this.frozenEmbeddings.dataSync() as Float32Array,
      });
    }
    return weights;
  }

  setWeights(weights: NamedWeight[]): void {
    const byName = new Map(weights.map((w) => [w.name, w]));
    for (const [name, v] of this.vars) {
      const w = byName.get(name);
      if (!w) throw new Error(`setWeights: missing ${name}`);
      if (w.shape.join("x") !== v.shape.join("x")) {
        throw new Error(`setWeights: ${name} has shape [${w.shape}], the model expects [${v.shape}]`);
      }
      this.tf.tidy(() => v.assign(this.tf.tensor(w.data, w.shape)));
    }
    const frozen = byName.get("embedding/embeddings");
    if (this.frozenEmbeddings && frozen) {
      if (frozen.shape.join("x") !== this.frozenEmbeddings.shape.join("x")) {
        throw new Error(
          `setWeights: embedding/embeddings has shape [${frozen.shape}], the model expects [${this.frozenEmbeddings.shape}]`,
        );
      }
      this.frozenEmbeddings.dispose();
      this.frozenEmbeddings = this.tf.tensor2d(frozen.data, frozen.shape as [number, number]);
    }
  }

  async getOptimizerState(): Promise<OptimizerState> {
    const weights = await this.optimizer.getWeights();
    const slots: NamedWeight[] = [];
    for (const w of weights.slice(1)) {
      slots.push({
        name: w.name.replace(`${this.prefix}/`, ""),
        shape: [...w.tensor.shape],
        data: (await w.tensor.data()) as Float32Array,
      });
    }
    weights[0]?.tensor.dispose();
    const { accBeta1, accBeta2 } = this.optimizer as unknown as { accBeta1: Tensor; accBeta2: Tensor };
    return {
      iterations: this.optimizer.iterations,
      beta1Power: (await accBeta1.data())[0]!,
      beta2Power: (await accBeta2.data())[0]!,
      slots,
    };
  }

  async setOptimizerState(state: OptimizerState): Promise<void> {
    const tf = this.tf;
    const names = TRAINABLE.filter((n) => this.vars.has(n));
    const expected = [...names.map((n) => `${n}/m`), ...names.map((n) => `${n}/v`)];
    const got = state.slots.map((s) => s.name);
    if (got.length > 0 && got.join() !== expected.join()) {
      throw new Error(
        `optimizer state slots [${got.join(", ")}] do not match this model's [${expected.join(", ")}]`,
      );
    }
    this.optimizer.dispose();
    this.optimizer = tf.train.adam(this.config.learningRate);
    await this.optimizer.setWeights([
      { name: "iter", tensor: tf.scalar(state.iterations, "int32") },
      ...state.slots.map((s) => ({ name: `${this.prefix}/${s.name}`, tensor: tf.tensor(s.data, s.shape) })),
    ]);
    // Adam's setWeights recomputes beta^(t+1) with pow(); training multiplies step by step, and the two
    // differ in the last float32 bit. Restore the saved values so a resumed run matches exactly.
    const { accBeta1, accBeta2 } = this.optimizer as unknown as { accBeta1: Variable; accBeta2: Variable };
    tf.tidy(() => {
      accBeta1.assign(tf.scalar(state.beta1Power));
      accBeta2.assign(tf.scalar(state.beta2Power));
    });
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.frozenEmbeddings?.dispose();
    this.optimizer.dispose();
  }
}

/** Width up to the last non-pad column of any row (at least 2: one input and one target). */
export function trimmedWidth(tokens: Int32Array, size: number, width: number): number {
  let w = 2;
  for (let i = 0; i < size; i++) {
    for (let j = width - 1; j >= w; j--) {
      if (tokens[i * width + j] !== PAD_ID) {
        w = j + 1;
        break;
      }
    }
  }
  return Math.min(w, width);
}

/** Number of non-pad targets: for token rows, every non-pad token after the first column. */
function countNonPad(values: Int32Array, width: number): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== PAD_ID && (width === 1 || i % width !== 0)) n++;
  return n;
}
