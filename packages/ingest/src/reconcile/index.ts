export { reconcileDataset, type ReconcileOptions, type ReconcileSummary } from "./reconcile.ts";
