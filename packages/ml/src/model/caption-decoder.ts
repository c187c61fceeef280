/**
 * What serves captions from a loaded caption model: greedy and beam decoding, asynchronous so that a
 * runtime outside the JS thread (ONNX Runtime, onnx-decoder.ts) and the tfjs model itself fit the same
 * caller. The searches are decode-search.ts's in both cases; only the step differs.
 */
import type { CaptionModel } from "./caption-model.ts";
import type { BeamOptions, BeamResult, DecodeResult, ScoreResult } from "./decode-search.ts";

export const DECODER_RUNTIMES = ["onnx", "tfjs"] as const;
export type DecoderRuntime = (typeof DECODER_RUNTIMES)[number];

export interface CaptionDecoder {
  readonly runtime: DecoderRuntime;
  /** What runs the steps, e.g. 'onnxruntime-node:cpu' or 'tfjs'. */
  readonly backend: string;
  /** Greedy captions of `n` feature rows [n × featureDim]: the tfjs model's `greedyDecode`. */
  greedyDecode(features: Float32Array, n: number, opts?: { maxLength?: number }): Promise<DecodeResult>;
  /** Beam search from one feature row, best first: the tfjs model's `beamSearch`. */
  beamSearch(feature: Float32Array, opts: BeamOptions): Promise<BeamResult[]>;
  /** Log-likelihood of word-id sequences, row i under feature row i: the tfjs model's `scoreSequences`. */
  scoreSequences(features: Float32Array, sequences: readonly (readonly number[])[]): Promise<ScoreResult>;
  /** Frees what the decoder holds (not the model it was built from). */
  dispose(): Promise<void>;
}

/** The tfjs model's own step decoder behind the asynchronous interface; the model stays the caller's. */
export function tfjsDecoder(model: CaptionModel): CaptionDecoder {
  let disposed = false;
  const live = () => {
    if (disposed) throw new Error("caption decoder disposed");
  };
  return {
    runtime: "tfjs",
    backend: "tfjs",
    greedyDecode: async (features, n, opts) => {
      live();
      return model.greedyDecode(features, n, opts);
    },
    beamSearch: async (feature, opts) => {
      live();
      return model.beamSearch(feature, opts);
    },
    scoreSequences: async (features, sequences) => {
      live();
      return model.scoreSequences(features, sequences);
    },
    dispose: async () => {
      disposed = true;
    },
  };
}
