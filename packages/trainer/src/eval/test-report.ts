/**
 * The test report's shape, and how its rows are made: the training run's test report (train-run.ts)
 * and `capflow eval` (evaluate-model.ts) caption a split with the same systems, window by window, and
 * build the same table from it.
 */
import type { DecodeChoice, DecodeChoiceInput, Split } from "@capflow/common";
import { applyFeatureTransform, captionRows, type CaptionContext, type Calibration } from "@capflow/ml";
import { cleanedCaptions, splitWindows, type StreamedData } from "../run/streamed-epoch.ts";
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
  /** Share of images flagged out of domain; `val` is null where only one split was captioned (`capflow eval`). */
  outOfDomain: { val: number | null; test: number };
  samples: SampleRow[];
}

export interface CaptionedSplit {
  /** Each system's captions, in image order. */
  captions: Record<System, string[]>;
  /** Cleaned references, in image order. */
  refs: string[][][];
  /**
   * One row per image: its key and file, every system's caption, its (raw) references, and the
   * confidence and out-of-domain flag of the model's `decode`.
   */
  samples: SampleRow[];
}

/**
 * Captions every image of a split a window at a time with the model's `decode`, greedy decoding,
 * retrieval re-ranking and the retrieval baseline (each image gets the first caption of its nearest
 * training image, by cosine similarity of the same transformed features the model sees). Without an
 * index (a model published before indexes) re-rank is the model's caption and the baseline is empty.
 * Captions, references and rows are kept: O(split) text, as corpus scores need every image's.
 */
export async function captionSplit(
  ctx: CaptionContext,
  data: StreamedData,
  split: Split,
  opts: { decode: DecodeChoiceInput; lettersOnly: boolean },
): Promise<CaptionedSplit> {
  const captions: Record<System, string[]> = { model: [], greedy: [], rerank: [], baseline: [] };
  const refs: string[][][] = [];
  const samples: SampleRow[] = [];
  for await (const window of splitWindows(data, split)) {
    const n = window.images.length;
    const model = await captionRows(ctx, window.features, n, opts.decode);
    const greedy = await captionRows(ctx, window.features, n, { method: "greedy" });
    const rerank = ctx.index ? await captionRows(ctx, window.features, n, { method: "rerank" }) : model;
    const nearest = ctx.index?.nearest(applyFeatureTransform(ctx.transform, window.features), n, 1);
    refs.push(...cleanedCaptions(window, { lettersOnly: opts.lettersOnly }));
    window.images.forEach((img, i) => {
      const row: Record<System, string> = {
        model: model[i]!.caption,
        greedy: greedy[i]!.caption,
        rerank: rerank[i]!.caption,
        baseline: nearest ? (ctx.index!.captions[nearest[i]![0]!.index]?.[0] ?? "") : "",
      };
      for (const s of SYSTEMS) captions[s].push(row[s]);
      samples.push({
        key: img.key,
        file: img.file,
        ...row,
        references: img.captions,
        confidence: model[i]!.confidence,
        outOfDomain: model[i]!.outOfDomain,
      });
    });
  }
  return { captions, refs, samples };
}
