/** Import rules: no cycles; roles import common, never each other; only the cli composes roles. */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "role-imports-role",
      comment: "A role may import @capflow/common, never another role.",
      severity: "error",
      // Tests may drive several roles together (an API test with a real caption worker).
      from: {
        path: "^packages/(ingest|feature-worker|trainer|caption-worker)/",
        pathNot: "^packages/[^/]+/test/",
      },
      to: { path: "^packages/(ingest|feature-worker|trainer|caption-worker|cli)/", pathNot: "^packages/$1/" },
    },
    {
      name: "common-imports-role",
      severity: "error",
      from: { path: "^packages/common/" },
      to: { path: "^packages/(ingest|feature-worker|trainer|caption-worker|cli)/" },
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
