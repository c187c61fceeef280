/**
 * `capflow eval`: scores a published model on any labelled, ingested dataset's split, beside the
 * normalised retrieval baseline, with bootstrap 95% intervals, through the same code the caption workers
 * run (caption-rows.ts: the model's feature transform, decoding, confidence).
 */
import {
  DEFAULT_DECODE,
  putJson,
  type DecodeChoiceInput,
  type ObjectStore,
  type Split,
} from "@capflow/common";
import {
  applyFeatureTransform,
  captionRows,
  loadPublishedModel,
  readModelPointer,
  tfjsDecoder,
  type Tf,
} from "@capflow/ml";
import { scanShards } from "../data/scan-shards.ts";
import { storeShardSource } from "../data/shard-stream.ts";
import { cleanedCaptions, splitWindows } from "../run/streamed-epoch.ts";
import { SYSTEMS, type System, type TestReport } from "../run/train-run.ts";
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
  /** Feature shards read at once (default 4): memory grows with it, not with the split. */
  windowShards?: number;
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
    const scan = await scanShards(store, opts.dataset, pointer.encoderId, { countWords: false });
    if (scan.images[opts.split] === 0)
      throw new Error(
        `dataset "${opts.dataset}" has no ${opts.split} images with features for ${pointer.encoderId}`,
      );
    const data = {
      // The clean vectors only: evaluation never reads augmented views.
      source: storeShardSource(store, opts.dataset, pointer.encoderId),
      scan,
      windowShards: opts.windowShards ?? 4,
    };
    const ctx = {
      decoder: tfjsDecoder(loaded.model),
      vocab: loaded.vocab,
      transform: loaded.transform,
      index: loaded.index,
    };
    const decode = { ...DEFAULT_DECODE, ...opts.decode };
    // The split is streamed a window at a time; captions, references and the report's rows are kept
    // (O(split) text: corpus scores need every image's).
    const captions: Record<System, string[]> = { model: [], greedy: [], rerank: [], baseline: [] };
    const refs: string[][][] = [];
    const samples: EvalReport["samples"] = [];
    for await (const window of splitWindows(data, opts.split)) {
      const n = window.images.length;
      const model = await captionRows(ctx, window.features, n, decode);
      const greedy = await captionRows(ctx, window.features, n, { method: "greedy" });
      const rerank = loaded.index ? await captionRows(ctx, window.features, n, { method: "rerank" }) : model;
      const nearest = loaded.index?.nearest(applyFeatureTransform(loaded.transform, window.features), n, 1);
      refs.push(...cleanedCaptions(window, { lettersOnly: opts.lettersOnly }));
      window.images.forEach((img, i) => {
        const row: Record<System, string> = {
          model: model[i]!.caption,
          greedy: greedy[i]!.caption,
          rerank: rerank[i]!.caption,
          baseline: nearest ? (loaded.index!.captions[nearest[i]![0]!.index]?.[0] ?? "") : "",
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
    const n = samples.length;
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
      outOfDomain: { val: NaN, test: samples.filter((r) => r.outOfDomain).length / n },
      samples,
      reportKey,
    };
    await putJson(store, reportKey, report);
    return report;
  } finally {
    loaded.model.dispose();
  }
}
