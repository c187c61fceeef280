/**
 * @capflow/ml: what runs models. The encoder (ONNX Runtime or tfjs), image preprocessing, the caption
 * model and its decoders, text, the compute backend and published models. Only the roles that run a
 * model import it; the API, ingest and the CLI's own commands never load ONNX Runtime or tfjs.
 */
export * from "./text/index.ts";
export * from "./compute/index.ts";
export * from "./model/index.ts";
export * from "./registry/published-model.ts";
export {
  load as loadEncoder,
  encoderId as defaultEncoderId,
  PIXELS_PER_IMAGE,
  IMAGE_SIZE,
  EXECUTION_PROVIDERS,
  ENCODER_PRECISIONS,
  int8EncoderId,
  structuredLogger,
} from "./encoder/index.ts";
export type {
  Encoder,
  EncoderConfig,
  EncoderPrecision,
  EncoderQuality,
  EncoderRuntime,
} from "./encoder/index.ts";
export { rowCosines, summariseCosines } from "./encoder/cosine-stats.ts";
export * from "./preprocess/decode-image.ts";
export * from "./preprocess/augment-view.ts";
export { EncoderEnvShape, encoderConfigFromEnv, encoderModelFromEnv } from "./encoder/encoder-env.ts";
