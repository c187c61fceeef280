/**
 * The test report's shape, and how its sample rows are joined: the training run's test report
 * (train-run.ts) and `capflow eval` (evaluate-model.ts) build the same table from the same parts.
 */
import type { DecodeChoice } from "@capflow/common";
import type { Calibration, RowCaption } from "@capflow/ml";
import type { SplitData } from "../data/load-splits.ts";
import type { ScoresWithIntervals } from "./bootstrap.ts";

/** What the test report compares, each on the same images with the same references. */
export const SYSTEMS = ["model", "greedy", "rerank", "baseline"] as const;
export type System = (typeof SYSTEMS)[number];
export const SYSTEM_LABELS: Record<System, string> = {
  model: "model (default: beam + length penalty)",
  greedy: "model, greedy",
  rerank: "model, retrieval re-rank",
  baseline: "retrieval baseline (normalised)",
};

export type SampleRow = {
  key: string;
  file: string;
  references: string[];
  confidence: number;
  outOfDomain: boolean;
} & Record<System, string>;

export interface TestReport {
  images: number;
  /** The default decoding (what the API and bulk jobs use unless asked otherwise). */
  decode: DecodeChoice;
  scores: Record<System, ScoresWithIntervals>;
  calibration: Calibration;
  /** Share of images flagged out of domain. */
  outOfDomain: { val: number; test: number };
  samples: SampleRow[];
}

/**
 * One row per image of the split: its key and file, every system's caption, its (raw) references,
 * and the confidence and out-of-domain flag of the model's default decoding (`model[i]`).
 */
export function sampleRows(
  split: Pick<SplitData, "ids" | "keys" | "files" | "captions">,
  captions: Readonly<Record<System, readonly string[]>>,
  model: ReadonlyArray<Pick<RowCaption, "confidence" | "outOfDomain">>,
): SampleRow[] {
  return split.ids.map((_, i) => ({
    key: split.keys[i]!,
    file: split.files[i]!,
    model: captions.model[i]!,
    greedy: captions.greedy[i]!,
    rerank: captions.rerank[i]!,
    baseline: captions.baseline[i]!,
    references: split.captions[i]!,
    confidence: model[i]!.confidence,
    outOfDomain: model[i]!.outOfDomain,
  }));
}
