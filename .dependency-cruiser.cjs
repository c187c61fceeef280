/**
 * Import rules (docs/architecture.md, "Packages"): no cycles; the platform (common) imports nothing of
 * ours; ml imports only common; roles import common (and ml where they run a model), never each other;
 * only the cli composes roles, and its command registrations load role code lazily so that
 * `capflow --help`, `capflow api` and ingest never load ONNX Runtime or tfjs.
 */
const ROLES = "ingest|feature-worker|trainer|caption-worker|api";
const MODEL_RUNTIMES = "onnxruntime-node|@tensorflow|nsfwjs|protobufjs";

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "common-is-the-platform",
      comment: "@capflow/common imports no other package of ours and no model runtime.",
      severity: "error",
      from: { path: "^packages/common/" },
      to: { path: [`^packages/(ml|cli|${ROLES})/`, `node_modules/(${MODEL_RUNTIMES})`] },
    },
    {
      name: "ml-imports-only-common",
      severity: "error",
      from: { path: "^packages/ml/" },
      to: { path: `^packages/(cli|${ROLES})/` },
    },
    {
      name: "role-imports-role",
      comment: "A role may import @capflow/common (and @capflow/ml), never another role.",
      severity: "error",
      // Tests may drive several roles together (an API test with a real caption worker).
      from: { path: `^packages/(${ROLES})/`, pathNot: "^packages/[^/]+/test/" },
      to: { path: `^packages/(cli|${ROLES})/`, pathNot: "^packages/$1/" },
    },
    {
      name: "no-model-runtime-in-api-or-ingest",
      comment: "The API and ingest run no model: they must start without ONNX Runtime, tfjs or @capflow/ml.",
      severity: "error",
      // Their unit tests may check what the decoder makes of their output (the emoji renderer's images).
      from: { path: "^packages/(api|ingest)/src/", pathNot: "\\.test\\.ts$" },
      to: { path: ["^packages/ml/", `node_modules/(${MODEL_RUNTIMES})`] },
    },
    {
      name: "cli-loads-model-code-lazily",
      comment: "Command registration runs for every `capflow` call: model code only behind await import().",
      severity: "error",
      from: { path: "^packages/cli/src/(main|commands/)" },
      to: {
        path: ["^packages/(ml|feature-worker|trainer|caption-worker)/", `node_modules/(${MODEL_RUNTIMES})`],
        dependencyTypesNot: ["dynamic-import"],
      },
    },
    {
      name: "outside-code-uses-package-indexes",
      comment: "Tests and scripts use a package through its index, like any other consumer.",
      severity: "error",
      from: { path: "^(test|scripts)/" },
      to: { path: "^packages/[^/]+/src/", pathNot: "^packages/[^/]+/src/index\\.ts$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
    },
  },
};
