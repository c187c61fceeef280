export { reconcileDataset, type ReconcileOptions, type ReconcileSummary } from "./reconcile.ts";
export { reconcileCommand, type ReconcileCommandOptions } from "./reconcile-command.ts";
