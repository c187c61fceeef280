/**
 * The decoder captions are served with: ONNX Runtime (onnx-decoder.ts) unless the tfjs runtime is
 * asked for, and the tfjs model itself, with a warning naming the reason, where the ONNX decoder cannot
 * be built or disagrees with the tfjs model. Caption workers, `capflow eval` and the trainer's test
 * report all decode through this, so the scores a report prints are those of the served captions.
 */
import { consoleLogger } from "../encoder/types.ts";
import { tfjsDecoder, type CaptionDecoder, type DecoderRuntime } from "./caption-decoder.ts";
import type { CaptionModel } from "./caption-model.ts";
import { loadOnnxDecoder, type OnnxDecoderOptions } from "./onnx-decoder.ts";

export interface ServingDecoderOptions extends OnnxDecoderOptions {
  /** Default onnx. */
  runtime?: DecoderRuntime;
}

export async function loadServingDecoder(
  model: CaptionModel,
  opts: ServingDecoderOptions = {},
): Promise<CaptionDecoder> {
  if (opts.runtime === "tfjs") return tfjsDecoder(model);
  try {
    return await loadOnnxDecoder(model, opts);
  } catch (err) {
    (opts.logger ?? consoleLogger).warn("ONNX caption decoder unavailable; decoding on tfjs", {
      err: (err as Error).message,
    });
    return tfjsDecoder(model);
  }
}
