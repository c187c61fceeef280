import { defineConfig } from "vitest/config";

// Three projects: unit tests sit next to the source and need no services; integration tests
// start a real redis-server and S3-protocol server (test/global-setup.ts) and run serially;
// chaos tests inject real faults and only run through `pnpm test:chaos`.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.int.test.ts", "test/**/*.int.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          setupFiles: ["test/leak-guard.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "chaos",
          include: ["test/chaos/**/*.chaos.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          setupFiles: ["test/leak-guard.ts"],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
