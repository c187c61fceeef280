export * from "./queue-admin.ts";
export * from "./watch-concurrency.ts";
export * from "../ops/queue-metrics.ts";
