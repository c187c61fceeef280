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
  loadPublishedModel,
  loadServingDecoder,
  type CaptionDecoder,
  type ServingDecoderOptions,
  type Tf,
} from "@capflow/ml";
import { scanShards } from "../data/scan-shards.ts";
import { storeShardSource } from "../data/shard-stream.ts";
import { captionSplit, SYSTEMS, type System, type TestReport } from "./test-report.ts";
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
  /** Where the decoder says how it was built (default: JSON lines on stderr). */
  logger?: ServingDecoderOptions["logger"];
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
  let decoder: CaptionDecoder | undefined;
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
    // Decoded as the caption workers decode (serving-decoder.ts): ONNX Runtime, or tfjs as its fallback.
    decoder = await loadServingDecoder(loaded.model, { logger: opts.logger });
    const ctx = {
      decoder,
      vocab: loaded.vocab,
      transform: loaded.transform,
      index: loaded.index,
    };
    const decode = { ...DEFAULT_DECODE, ...opts.decode };
    const { captions, refs, samples } = await captionSplit(ctx, data, opts.split, {
      decode,
      lettersOnly: opts.lettersOnly ?? false,
    });
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
      outOfDomain: { val: null, test: samples.filter((r) => r.outOfDomain).length / n },
      samples,
      reportKey,
    };
    await putJson(store, reportKey, report);
    return report;
  } finally {
    await decoder?.dispose();
    loaded.model.dispose();
  }
}
