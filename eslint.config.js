import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", ".capflow/**", "**/*.js", "**/*.cjs", "deploy/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // The rules that matter for async worker code.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // One import statement per module (a second one from @capflow/common crept into bulk-admission.ts).
      "no-duplicate-imports": ["error", { allowSeparateTypeImports: true }],
    },
  },
  {
    // Every Redis connection, QueueEvents and BullMQ worker goes through @capflow/common's factories
    // (createRedis, connectRedis, createQueueEvents, createWorker): they record what is open, which the
    // test suite's leak guard (test/leak-guard.ts) checks after each file. Only the factories' own
    // folder builds them raw. Three tests once built raw workers, which the guard could not see.
    ignores: ["packages/common/src/queue/**"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "NewExpression[callee.name=/^(Redis|Cluster|QueueEvents)$/]",
          message:
            "open it through @capflow/common (createRedis, connectRedis, createQueueEvents) so the leak guard sees it",
        },
        {
          selector: "CallExpression[callee.property.name='duplicate']",
          message: "a duplicated connection escapes the leak guard: use createRedis or duplicateForBlocking",
        },
      ],
      // BullMQ's Worker class, as a value: named, aliased or through a namespace import, so no
      // `new Worker(` from bullmq. A selector on `new Worker` would also hit node:worker_threads'.
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: [
            {
              name: "bullmq",
              importNames: ["Worker"],
              allowTypeImports: true,
              message:
                "build BullMQ workers with createWorker from @capflow/common (or the role's own factory) so the leak guard sees them",
            },
          ],
        },
      ],
    },
  },
);
