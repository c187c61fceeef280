export { CaptionMerge, CaptionModelConfig, createCaptionModel, trimmedWidth } from "./caption-model.ts";
export type {
  CaptionModelConfigInput,
  CaptionModel,
  NamedWeight,
  OptimizerState,
  TeacherBatch,
  PrefixBatch,
  TrainBatch,
  DecodeResult,
  BeamResult,
} from "./caption-model.ts";
export { teacherBatch, prefixBatch, prefixSamples, captionLength, numCaptions } from "./batches.ts";
export type { CaptionSet, PrefixSample } from "./batches.ts";
export { encodeWeights, decodeWeights } from "./weights-io.ts";
export type { WeightSpec } from "./weights-io.ts";
export type { BeamOptions } from "./decode-search.ts";
export { DECODER_RUNTIMES, tfjsDecoder } from "./caption-decoder.ts";
export type { CaptionDecoder, DecoderRuntime } from "./caption-decoder.ts";
export { DECODER_AGREEMENT_TOLERANCE, loadOnnxDecoder } from "./onnx-decoder.ts";
export type { OnnxDecoderOptions } from "./onnx-decoder.ts";
export { loadServingDecoder, type ServingDecoderOptions } from "./serving-decoder.ts";
export {
  FeatureTransform,
  IDENTITY_TRANSFORM,
  applyFeatureTransform,
  featureTransformFromJSON,
  fitFeatureTransform,
  type FeatureTransformKind,
} from "./feature-transform.ts";
export {
  CaptionIndex,
  Calibration,
  UNCALIBRATED,
  calibrate,
  loadCaptionIndex,
  saveCaptionIndex,
  type Neighbour,
} from "./caption-index.ts";
export type { ScoreResult } from "./decode-search.ts";
export { captionRows, type CaptionContext, type RowCaption } from "./caption-rows.ts";
