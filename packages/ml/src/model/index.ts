export { CaptionModelConfig, createCaptionModel, trimmedWidth } from "./caption-model.ts";
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
