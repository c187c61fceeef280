/**
 * `capflow eval`: scores a published model on any labelled, ingested dataset's split, beside the
 * normalised retrieval baseline, with bootstrap 95% intervals, through the same code the caption workers
 * run (caption-rows.ts: the model's feature transform, decoding, confidence).
 */
import {
  DEFAULT_DECODE,
  putJson,
  readModelPointer,
  type DecodeChoiceInput,
  type ObjectStore,
  type Split,
} from "@capflow/common";
import {
  applyFeatureTransform,
  captionRows,
  cleanCaption,
  loadPublishedModel,
  tfjsDecoder,
  type Tf,
} from "@capflow/ml";
import { loadSplits } from "../data/load-splits.ts";
import { sampleRows, SYSTEMS, type System, type TestReport } from "./test-report.ts";
import { scoreWithIntervals, type ScoresWithIntervals } from "./bootstrap.ts";

export interface EvalOptions {
  model: string;
  dataset: string;
  split: Split;
  /** Default: the model's default decoding (beam search with a length penalty). */
  decode?: DecodeChoiceInput;
  /** Clean references with the tutorial's isalpha rule (a model trained with lettersOnly). */
  lettersOnly?: boolean;
  resamples?: number;
}

export interface EvalReport extends Omit<TestReport, "decode"> {
  model: string;
  modelVersion: string;
  dataset: string;
  split: Split;
  decode: DecodeChoiceInput;
  /** Store key the report was written to. */
  reportKey: string;
}

export async function evaluateModel(store: ObjectStore, tf: Tf, opts: EvalOptions): Promise<EvalReport> {
  const pointer = await readModelPointer(store, opts.model);
  const loaded = await loadPublishedModel(store, tf, pointer);
  try {
    const splits = await loadSplits(store, opts.dataset, pointer.encoderId);
    const data = splits[opts.split];
    const n = data.ids.length;
    if (n === 0)
      throw new Error(
        `dataset "${opts.dataset}" has no ${opts.split} images with features for ${pointer.encoderId}`,
      );
    const refs = data.captions.map((caps) =>
      caps.map((c) => cleanCaption(c, { lettersOnly: opts.lettersOnly })),
    );
    const ctx = {
      decoder: tfjsDecoder(loaded.model),
      vocab: loaded.vocab,
      transform: loaded.transform,
      index: loaded.index,
    };
    const decode = { ...DEFAULT_DECODE, ...opts.decode };
    const model = await captionRows(ctx, data.features, n, decode);
    const greedy = await captionRows(ctx, data.features, n, { method: "greedy" });
    const rerank = loaded.index ? await captionRows(ctx, data.features, n, { method: "rerank" }) : model;
    const nearest = loaded.index?.nearest(applyFeatureTransform(loaded.transform, data.features), n, 1);
    const baseline = nearest
      ? nearest.map((nb) => loaded.index!.captions[nb[0]!.index]?.[0] ?? "")
      : new Array<string>(n).fill("");
    const captions: Record<System, string[]> = {
      model: model.map((c) => c.caption),
      greedy: greedy.map((c) => c.caption),
      rerank: rerank.map((c) => c.caption),
      baseline,
    };
    const scores = Object.fromEntries(
      SYSTEMS.map((s) => [s, scoreWithIntervals(captions[s], refs, { resamples: opts.resamples })]),
    ) as Record<System, ScoresWithIntervals>;
    const reportKey = `reports/eval/${opts.model}/${opts.dataset}-${opts.split}.json`;
    const report: EvalReport = {
      model: opts.model,
      modelVersion: loaded.version,
      dataset: opts.dataset,
      split: opts.split,
      images: n,
      decode,
      scores,
      calibration: loaded.index?.calibration ?? { a: 0, b: 0, oodThreshold: -1, rule: "no index" },
      outOfDomain: { val: NaN, test: model.filter((c) => c.outOfDomain).length / n },
      samples: sampleRows(data, captions, model),
      reportKey,
    };
    await putJson(store, reportKey, report);
    return report;
  } finally {
    loaded.model.dispose();
  }
}
