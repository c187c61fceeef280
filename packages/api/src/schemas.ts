import { z } from "zod";
import { DatasetName, ModelName } from "@capflow/common";

/**
 * Request and response bodies of the HTTP API. Every request body is parsed with these; the OpenAPI
 * document is generated from them (openapi.ts), so the two cannot drift.
 */
const Method = z
  .enum(["beam", "greedy", "rerank"])
  .describe(
    "Decoding: beam search with a length penalty (default), greedy, or rerank (the captions of the nearest training images, ranked by the model)",
  );
const BeamWidth = z.number().int().min(1).max(20).describe("Beam width, for method=beam");

const DecodeFields = {
  model: ModelName.default("default"),
  method: Method.default("beam"),
  beamWidth: BeamWidth.default(3),
};

export const ImageKey = z
  .string()
  .regex(
    /^(images|uploads\/\d{10})\/[0-9a-f]{64}\.(jpg|png|gif|webp|bin)$/,
    "must be images/<sha256>.<ext> as ingest stores images (or an upload's key while it is kept)",
  )
  .describe("An image already in the store");

export const CaptionRequestJson = z
  .strictObject({
    key: ImageKey.optional(),
    url: z.string().max(2048).describe("An http(s) URL to fetch the image from").optional(),
    ...DecodeFields,
  })
  .refine((b) => (b.key === undefined) !== (b.url === undefined), {
    message: "give exactly one of key or url (or upload the image as multipart field 'image' or a raw body)",
    path: ["key"],
  })
  .describe("Caption an image from the store or from a URL");

/** Decode options in the query string (raw and multipart uploads). */
export const CaptionQuery = z.strictObject({
  model: ModelName.optional(),
  method: Method.optional(),
  beamWidth: z.coerce.number().pipe(BeamWidth).optional(),
});

export const Timings = z.object({
  queuedMs: z.number(),
  decodeMs: z.number(),
  encodeMs: z.number(),
  totalMs: z.number(),
});

export const CaptionDone = z.object({
  id: z.string(),
  status: z.literal("done"),
  caption: z.string(),
  logProb: z.number(),
  confidence: z
    .number()
    .nullable()
    .describe("Calibrated on validation: probability that the caption names the image exactly"),
  similarity: z.number().nullable().describe("Cosine similarity to the nearest training image"),
  outOfDomain: z.boolean().describe("The image is unlike the training images: do not trust the caption"),
  modelVersion: z.string(),
  method: Method,
  alternatives: z
    .array(z.object({ caption: z.string(), logProb: z.number(), score: z.number() }))
    .optional()
    .describe("method=beam: every finished beam, best first, with the score they were ranked by"),
  timings: Timings,
});

export const CaptionPending = z.object({
  id: z.string(),
  status: z.enum(["queued", "running"]),
  poll: z.string().describe("GET this path for the result"),
});

export const CaptionFailed = z.object({
  id: z.string(),
  status: z.literal("failed"),
  error: z.literal("caption_failed"),
  message: z.string(),
});

export const CaptionJobRequest = z
  .strictObject({
    dataset: DatasetName,
    split: z
      .enum(["train", "val", "test"])
      .optional()
      .describe("Keep only this split's images in the results"),
    ...DecodeFields,
  })
  .describe("Caption every image of an ingested dataset");

export const CaptionJobAccepted = z.object({
  id: z.string(),
  shards: z.number().int(),
  images: z.number().int(),
  status: z.string().describe("Poll GET /v1/caption-jobs/{id}"),
});

export const CaptionJobStatus = z.object({
  id: z.string(),
  status: z.enum(["queued", "running", "done", "failed", "cancelled"]),
  dataset: z.string(),
  split: z.enum(["train", "val", "test"]).optional(),
  model: z.string(),
  shards: z.object({
    total: z.number().int(),
    done: z.number().int(),
    failed: z.number().int(),
    waiting: z.number().int(),
    active: z.number().int(),
  }),
  images: z.number().int(),
  captioned: z.number().int(),
  failures: z.array(z.object({ shardId: z.string(), reason: z.string() })),
  results: z.string().optional().describe("Path of the results (JSON lines) once every shard is done"),
});

export const BulkResultLineSchema = z.object({
  id: z.string(),
  key: z.string(),
  file: z.string().optional(),
  caption: z.string().optional(),
  logProb: z.number().optional(),
  confidence: z.number().nullable().optional(),
  outOfDomain: z.boolean().optional(),
  error: z.object({ reason: z.string(), message: z.string() }).optional(),
});

export const ApiError = z.object({
  error: z
    .string()
    .describe("A stable code: bad_request, unauthorized, not_found, queue_full, refused_address, ..."),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

/** A zod error as a one-line message naming each bad field, plus the list. */
export function describeIssues(error: z.ZodError): {
  message: string;
  issues: Array<{ path: string; message: string }>;
} {
  const issues = error.issues.map((i) => ({ path: i.path.join(".") || "(body)", message: i.message }));
  return { message: issues.map((i) => `${i.path}: ${i.message}`).join("; "), issues };
}
