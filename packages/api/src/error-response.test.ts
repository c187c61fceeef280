import { describe, expect, it } from "vitest";
import { z } from "zod";
import { errorResponse, ValidationProblem } from "./error-response.ts";
import { FetchUrlError } from "./fetch-url.ts";
import { ApiProblem } from "./problem.ts";

const opts = { maxBodyBytes: 1234 };
const withCode = (message: string, code: string, statusCode?: number) =>
  Object.assign(new Error(message), { code, statusCode });
const zodError = z.object({ dataset: z.string() }).safeParse({}).error!;

describe("errorResponse", () => {
  it.each([
    {
      name: "an ApiProblem as it says, with its headers",
      err: new ApiProblem(429, "queue_full", "too many captions waiting", { "retry-after": "7" }),
      status: 429,
      error: "queue_full",
      message: "too many captions waiting",
      headers: { "retry-after": "7" },
    },
    {
      name: "a URL the client should not have sent: 400",
      err: new FetchUrlError("refused_address", "the host is not allowed", "10.0.0.1"),
      status: 400,
      error: "refused_address",
      message: "fetching the URL: the host is not allowed",
      log: "info",
    },
    {
      name: "a remote server that failed: 502",
      err: new FetchUrlError("fetch_failed", "connection refused"),
      status: 502,
      error: "fetch_failed",
      log: "info",
    },
    {
      name: "a slow remote: 504",
      err: new FetchUrlError("timeout", "took too long"),
      status: 504,
      error: "timeout",
      log: "info",
    },
    {
      name: "a too large fetched image: 413",
      err: new FetchUrlError("too_large", "big"),
      status: 413,
      error: "too_large",
      log: "info",
    },
    {
      name: "a body over the limit, naming the limit",
      err: withCode("body", "FST_ERR_CTP_BODY_TOO_LARGE", 413),
      status: 413,
      error: "too_large",
      message: "the body is larger than 1234 bytes",
    },
    {
      name: "a multipart file over the limit",
      err: withCode("file", "FST_REQ_FILE_TOO_LARGE"),
      status: 413,
      error: "too_large",
    },
    {
      name: "a content type no parser takes",
      err: withCode("media", "FST_ERR_CTP_INVALID_MEDIA_TYPE", 415),
      status: 415,
      error: "unsupported_media_type",
    },
    {
      name: "a schema failure, naming the field",
      err: new ValidationProblem(zodError),
      status: 400,
      error: "bad_request",
      issues: [{ path: "dataset", message: expect.any(String) }],
    },
    {
      name: "another client error from Fastify",
      err: withCode("bad json", "FST_ERR_CTP_INVALID_JSON_BODY", 400),
      status: 400,
      error: "bad_request",
      message: "bad json",
    },
    { name: "a 413 from elsewhere", err: withCode("too big", "X", 413), status: 413, error: "too_large" },
    {
      name: "Redis gone: 503 with Retry-After",
      err: new Error("Connection is closed."),
      status: 503,
      error: "redis_unavailable",
      headers: { "retry-after": "5" },
    },
    {
      name: "Redis refused",
      err: new Error("connect ECONNREFUSED 127.0.0.1:6379"),
      status: 503,
      error: "redis_unavailable",
      headers: { "retry-after": "5" },
    },
    {
      name: "anything else: 500 without detail, logged as an error",
      err: new Error("secret internal detail"),
      status: 500,
      error: "internal",
      message: "internal error",
      log: "error",
    },
  ])("answers $name", ({ err, status, error, message, headers, issues, log }) => {
    const answer = errorResponse(err, opts);
    expect(answer.status).toBe(status);
    expect(answer.body.error).toBe(error);
    if (message !== undefined) expect(answer.body.message).toBe(message);
    expect(answer.headers).toEqual(headers ?? {});
    if (issues) expect(answer.body.issues).toEqual(issues);
    else expect(answer.body).not.toHaveProperty("issues");
    expect(answer.log?.level).toBe(log);
  });

  it("keeps fetch detail and stacks out of the body and in the log", () => {
    const fetchAnswer = errorResponse(
      new FetchUrlError("refused_address", "refused", "resolved to 10.0.0.1"),
      opts,
    );
    expect(JSON.stringify(fetchAnswer.body)).not.toContain("10.0.0.1");
    expect(fetchAnswer.log?.fields).toMatchObject({
      code: "refused_address",
      detail: "resolved to 10.0.0.1",
    });
    const internal = new Error("secret internal detail");
    const answer = errorResponse(internal, opts);
    expect(JSON.stringify(answer.body)).not.toContain("secret");
    expect(answer.log?.fields.err).toBe(internal);
  });
});
