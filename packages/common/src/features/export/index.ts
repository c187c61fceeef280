export { exportDataset, ExportError, type ExportOptions } from "./export-dataset.ts";
export { exportTarget } from "./export-target.ts";
export {
  EXPORT_COLUMNS,
  EXPORT_MANIFEST,
  planParts,
  sliceShards,
  type ExportManifest,
  type ExportPart,
} from "./export-layout.ts";
