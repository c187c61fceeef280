import type { Command } from "commander";

export function registerApi(program: Command): void {
  program
    .command("api")
    .summary("run the HTTP API (caption requests, bulk caption jobs)")
    .description(
      "Serve the HTTP API until SIGINT/SIGTERM, on CAPFLOW_API_HOST:CAPFLOW_API_PORT (127.0.0.1:8080).\n" +
        "  POST /v1/captions              caption one image (upload, stored key, or URL)\n" +
        "  GET  /v1/captions/:id          a request's result\n" +
        "  POST /v1/caption-jobs          caption an ingested dataset (bulk)\n" +
        "  GET  /v1/caption-jobs/:id      progress; /results once done; DELETE cancels; POST .../retry\n" +
        "  GET  /openapi.json             the OpenAPI 3.1 document\n" +
        "  GET  /healthz /readyz /metrics\n" +
        "Set CAPFLOW_API_KEY to require `x-api-key` (or a Bearer token) on /v1. Captions need a running\n" +
        "`capflow worker captions`.",
    )
    .action(async () => {
      const { apiMain } = await import("@capflow/api");
      await apiMain();
    });
}
