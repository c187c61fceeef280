/** What tests and benchmarks drive directly; the `capflow` binary itself starts at main.ts. */
export { captionImagesCommand, captionBulkCommand, type CaptionCommandOptions } from "./actions/caption.ts";
export { submitRun, formatProgress } from "./actions/submit-run.ts";
export { printResult } from "./actions/train.ts";
