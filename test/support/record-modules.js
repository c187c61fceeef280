// Loaded with `node --import` before a capflow process starts: registers a module hook that appends
// the URL of every module the process loads to CAPFLOW_TEST_MODULE_LOG (test-only).
import { register } from "node:module";

if (process.env.CAPFLOW_TEST_MODULE_LOG)
  register("./record-modules-hooks.js", import.meta.url, {
    data: { file: process.env.CAPFLOW_TEST_MODULE_LOG },
  });
