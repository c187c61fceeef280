export { apiMain } from "./main.ts";
export { buildApiServer, type ApiDeps, type ApiConfig } from "./server.ts";
export { ApiEnv, apiConfigFrom } from "./api-env.ts";
export { enqueueImageCaption, storeImage, awaitCaption, type DecodeChoice } from "./captions.ts";
export { captionBatchStatus, openCaptionBatchResults, submitCaptionBatch } from "./caption-jobs.ts";
export { CaptionJobRequest } from "./schemas.ts";
export { AdminEnv, startAdminServer, registerAdmin } from "./admin/index.ts";
