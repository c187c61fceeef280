export { main } from "./main.ts";
export { CaptionEnv } from "./env.ts";
export { Captioner, type CaptionerOptions } from "./captioner.ts";
export { ModelHolder, NoModelError } from "./model-holder.ts";
export type { DecoderSettings, ServingModel } from "./model-holder.ts";
export { MicroBatcher } from "./micro-batcher.ts";
export { createCaptionWorker, createCaptionWorkers, type CaptionWorkerDeps } from "./jobs/caption.ts";
