import { getJson, type ObjectStore } from "./object-store.ts";
import { modelPointer } from "./keys.ts";

/**
 * `models/<name>/latest`: which run's epoch serves captions under this name. The trainer writes it
 * (@capflow/ml publishModel); the caption workers load the model it names; the API and CLI only read
 * its fields, so the format lives here, beside the key layout, not in the model code.
 */
export interface ModelPointer {
  name: string;
  runId: string;
  epoch: number;
  encoderId: string;
  cider: number;
  /** The checkpoint folder holding weights, vocabulary and config. */
  checkpoint: string;
  /** The run's caption index (training features + captions + calibration), @capflow/ml caption-index.ts. */
  index?: string;
  publishedAt: string;
}

export function readModelPointer(store: ObjectStore, name: string): Promise<ModelPointer> {
  return getJson<ModelPointer>(store, modelPointer(name));
}
