/**
 * The caption model's step decoder on ONNX Runtime. tfjs-backend-wasm runs the step on one thread
 * and is compute-bound even at batch 1, so micro-batching bought only 1.22× there (171 vs 209
 * captions/s, docs/benchmarks.md); ORT's CPU provider runs the same step several times faster and
 * batches well (docs/benchmarks.md, "Caption decoding on ONNX Runtime").
 *
 * Two sessions built from the model's weights (onnx-decoder-graph.ts): the image projection, run once
 * per decode, and the step, run once per token. The searches are decode-search.ts's, as for tfjs.
 */
import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { createSession } from "../encoder/onnx-encoder.ts";
import { consoleLogger, EXECUTION_PROVIDERS, maxAbsDiff, type EncoderLogger } from "../encoder/types.ts";
import type { CaptionDecoder } from "./caption-decoder.ts";
import type { CaptionModel, CaptionModelConfig } from "./caption-model.ts";
import {
  beamSearch,
  greedySearch,
  runAsync,
  scoreSearch,
  type BeamOptions,
  type SearchConfig,
  type StepRequest,
} from "./decode-search.ts";
import {
  IMAGE_INPUT,
  IMAGE_OUTPUT,
  imageGraph,
  STEP_INPUTS,
  STEP_OUTPUTS,
  stepGraph,
} from "./onnx-decoder-graph.ts";

/** Largest accepted |ONNX − tfjs| of the first step's log-probabilities on the probe row at load. */
export const DECODER_AGREEMENT_TOLERANCE = 1e-3;

export interface OnnxDecoderOptions {
  /** ORT intra-op threads; default: number of cores. */
  threads?: number;
  /** ORT execution providers in order of preference (as the encoder's); default ['cpu']. Fall back to cpu. */
  executionProviders?: string[];
  /** Defaults to JSON lines on stderr. */
  logger?: EncoderLogger;
}

function validate(opts: OnnxDecoderOptions): void {
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1))
    throw new Error(`decoder threads must be a positive integer, got ${String(opts.threads)}`);
  const eps = opts.executionProviders;
  if (eps === undefined) return;
  if (!Array.isArray(eps) || eps.length === 0)
    throw new Error(
      `decoder executionProviders must be a non-empty array of: ${EXECUTION_PROVIDERS.join(", ")}`,
    );
  for (const ep of eps)
    if (!(EXECUTION_PROVIDERS as readonly string[]).includes(ep))
      throw new Error(`decoder execution provider '${ep}' is not one of: ${EXECUTION_PROVIDERS.join(", ")}`);
}

/**
 * Builds the ONNX decoder of `model` (its config and current weights; later `setWeights` calls are not
 * seen) and checks its first step against the tfjs model on a probe row, which also warms it up.
 */
export async function loadOnnxDecoder(
  model: Pick<CaptionModel, "config" | "getWeights" | "nextWordLogProbs">,
  opts: OnnxDecoderOptions = {},
): Promise<CaptionDecoder> {
  validate(opts);
  const log = opts.logger ?? consoleLogger;
  const threads = opts.threads ?? availableParallelism();
  const requested = opts.executionProviders ?? ["cpu"];
  const { config } = model;
  const weights = model.getWeights();
  // A step takes a fraction of a millisecond and JS runs between steps: threads left spinning there
  // take the cores from everything else. With 2 threads under load, a batch-64 step took 1.1–1.4 ms
  // without spinning and 2.7–4.3 ms with it (docs/benchmarks.md).
  const session = (bytes: Uint8Array) => createSession(bytes, threads, requested, log, { spinning: false });
  const image = await session(imageGraph(config, weights));
  let decoder: OnnxCaptionDecoder;
  try {
    const step = await session(stepGraph(config, weights));
    decoder = new OnnxCaptionDecoder(config, image.session, step.session, step.providers);
  } catch (err) {
    await image.session.release();
    throw err;
  }
  try {
    const probe = new Float32Array(config.featureDim).map((_, i) => Math.sin(i * 0.37));
    const onnx = await decoder.firstStepLogProbs(probe);
    const diff = maxAbsDiff(onnx, model.nextWordLogProbs(probe, [[config.startId]]));
    if (!(diff <= DECODER_AGREEMENT_TOLERANCE))
      throw new Error(
        `ONNX caption decoder disagrees with tfjs: max abs diff ${diff} > ${DECODER_AGREEMENT_TOLERANCE}`,
      );
    log.info("caption decoder loaded", {
      runtime: "onnx",
      backend: decoder.backend,
      threads,
      maxAbsDiff: diff,
    });
  } catch (err) {
    await decoder.dispose();
    throw err;
  }
  return decoder;
}

/** Rows `parents` of `src` [rows × width], in that order. */
function gatherRows(src: Float32Array, parents: readonly number[], width: number): Float32Array {
  const out = new Float32Array(parents.length * width);
  parents.forEach((p, j) => out.set(src.subarray(p * width, (p + 1) * width), j * width));
  return out;
}

function floats(t: ort.Tensor | undefined, name: string): Float32Array {
  if (!t || !(t.data instanceof Float32Array))
    throw new Error(`onnx decoder output ${name} missing or not float32`);
  return t.data;
}

class OnnxCaptionDecoder implements CaptionDecoder {
  readonly runtime = "onnx";
  readonly backend: string;
  private disposed = false;

  constructor(
    private readonly config: CaptionModelConfig,
    private readonly imageSession: ort.InferenceSession,
    private readonly stepSession: ort.InferenceSession,
    providers: string[],
  ) {
    this.backend = `onnxruntime-node:${providers.join(",")}`;
  }

  async greedyDecode(features: Float32Array, n: number, opts: { maxLength?: number } = {}) {
    const state = await this.start(features, n);
    return runAsync(greedySearch(n, this.searchConfig(opts.maxLength)), async (req) => {
      const out = await this.step(state, req, req.full === true);
      return { best: out.best, logProb: out.bestLogProb, logProbs: out.logProbs };
    });
  }

  async scoreSequences(features: Float32Array, sequences: readonly (readonly number[])[]) {
    const state = await this.start(features, sequences.length);
    return runAsync(scoreSearch(sequences, this.searchConfig(undefined)), async (req) => {
      const out = await this.step(state, req, true);
      return out.logProbs!;
    });
  }

  async beamSearch(feature: Float32Array, opts: BeamOptions) {
    const state = await this.start(feature, 1);
    return runAsync(beamSearch(this.searchConfig(opts.maxLength), opts), async (req) => {
      const out = await this.step(state, req, true);
      return out.logProbs!;
    });
  }

  /** Log-probabilities [V] of the word after `<start>` for one feature row. */
  async firstStepLogProbs(feature: Float32Array): Promise<Float32Array> {
    const state = await this.start(feature, 1);
    const out = await this.step(state, { tokens: Int32Array.of(this.config.startId) }, true);
    return out.logProbs!;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([this.imageSession.release(), this.stepSession.release()]);
  }

  private searchConfig(maxLength: number | undefined): SearchConfig {
    const { vocabSize, startId, endId } = this.config;
    return { vocabSize, startId, endId, maxLength: maxLength ?? this.config.maxLength };
  }

  private live(): void {
    if (this.disposed) throw new Error("caption decoder disposed");
  }

  /** Decoder state for `n` rows: the projected image and zero (h, c). */
  private async start(features: Float32Array, n: number): Promise<DecodeState> {
    this.live();
    const { featureDim: F, units: U } = this.config;
    if (!Number.isInteger(n) || n < 1 || features.length !== n * F)
      throw new Error(`decode needs n ≥ 1 rows of ${F} features, got ${features.length} values for n = ${n}`);
    const input = new ort.Tensor("float32", features, [n, F]);
    const out = await this.imageSession.run({ [IMAGE_INPUT]: input });
    return {
      image: floats(out[IMAGE_OUTPUT], IMAGE_OUTPUT),
      h: new Float32Array(n * U),
      c: new Float32Array(n * U),
    };
  }

  /**
   * One step: rebuilds the state rows from `req.parents`, feeds `req.tokens`, advances `state`. Only
   * greedy's best token and its log-prob are fetched unless `full` (beam), which adds the [rows × V]
   * log-probabilities.
   */
  private async step(
    state: DecodeState,
    req: StepRequest,
    full: boolean,
  ): Promise<{ best: Int32Array; bestLogProb: Float32Array; logProbs?: Float32Array }> {
    this.live();
    const U = this.config.units;
    if (req.parents) {
      state.image = gatherRows(state.image, req.parents, U);
      state.h = gatherRows(state.h, req.parents, U);
      state.c = gatherRows(state.c, req.parents, U);
    }
    const n = req.tokens.length;
    const I = STEP_INPUTS;
    const O = STEP_OUTPUTS;
    const fetches: string[] = [O.h, O.c, O.best, O.bestLogProb];
    if (full) fetches.push(O.logProbs);
    const out = await this.stepSession.run(
      {
        [I.tokens]: new ort.Tensor(
          "int64",
          BigInt64Array.from(req.tokens, (t) => BigInt(t)),
          [n],
        ),
        [I.h]: new ort.Tensor("float32", state.h, [n, U]),
        [I.c]: new ort.Tensor("float32", state.c, [n, U]),
        [I.image]: new ort.Tensor("float32", state.image, [n, U]),
      },
      fetches,
    );
    state.h = floats(out[O.h], O.h);
    state.c = floats(out[O.c], O.c);
    const best = out[O.best]?.data;
    if (!(best instanceof BigInt64Array))
      throw new Error(`onnx decoder output ${O.best} missing or not int64`);
    return {
      best: Int32Array.from(best, (b) => Number(b)),
      bestLogProb: floats(out[O.bestLogProb], O.bestLogProb),
      logProbs: full ? floats(out[O.logProbs], O.logProbs) : undefined,
    };
  }
}

interface DecodeState {
  image: Float32Array;
  h: Float32Array;
  c: Float32Array;
}
