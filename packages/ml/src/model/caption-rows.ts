/**
 * Captions for rows of raw encoder features, the same way everywhere: the caption workers (online and
 * bulk), the trainer's test report and `capflow eval`. The model's feature transform is applied here
 * (feature-transform.ts), then the chosen decoding runs, then every caption gets its confidence from
 * the model's caption index (caption-index.ts).
 *
 * Decodings:
 * - `beam` (default): beam search with a length penalty. Without one, beams favour short captions
 *   (issue 13); the default width and penalty are in `DEFAULT_DECODE`, measured in docs/quality.md.
 * - `greedy`: the most likely word at each step.
 * - `rerank`: retrieval-augmented: the captions of the `rerankK` nearest training images are scored by
 *   the model (mean log-probability per token, `<end>` included) and the best is returned.
 */
import { DecodeChoice, type DecodeChoiceInput } from "@capflow/common";
import type { Vocabulary } from "../text/vocabulary.ts";
import type { CaptionDecoder } from "./caption-decoder.ts";
import type { CaptionIndex } from "./caption-index.ts";
import { applyFeatureTransform, type FeatureTransform } from "./feature-transform.ts";

export interface RowCaption {
  caption: string;
  /** Sum of the log-probabilities of the caption's words and `<end>` under the model. */
  logProb: number;
  /** Cosine similarity of the (transformed) image features to the nearest training image. */
  similarity: number;
  /** Calibrated on validation: the probability that the caption names the image exactly. */
  confidence: number;
  /** The image is unlike anything the model was trained on (similarity under the validation threshold). */
  outOfDomain: boolean;
  /** Beam search only: every finished beam, best first (the first is `caption`). */
  alternatives?: Array<{ caption: string; logProb: number; score: number }>;
}

export interface CaptionContext {
  decoder: Pick<CaptionDecoder, "beamSearch" | "greedyDecode" | "scoreSequences">;
  vocab: Vocabulary;
  transform: FeatureTransform;
  /** Without an index (a model published before indexes existed) there is no rerank and confidence is NaN. */
  index?: CaptionIndex;
  /** Greedy decoding of transformed rows, when the caller batches it (the caption worker's micro-batcher). */
  greedy?: (transformed: Float32Array, n: number) => Promise<Array<{ tokens: number[]; logProb: number }>>;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Captions for `n` rows of raw features [n × dim]. Yields to the event loop between rows. */
export async function captionRows(
  ctx: CaptionContext,
  raw: Float32Array,
  n: number,
  choiceInput: DecodeChoiceInput = {},
): Promise<RowCaption[]> {
  const choice = DecodeChoice.parse(choiceInput);
  const x = applyFeatureTransform(ctx.transform, raw);
  const dim = x.length / n;
  const neighbours = ctx.index?.nearest(x, n, choice.method === "rerank" ? choice.rerankK : 1);
  const decoded: Array<Pick<RowCaption, "caption" | "logProb" | "alternatives">> = [];
  if (choice.method === "greedy") {
    const rows = ctx.greedy
      ? await ctx.greedy(x, n)
      : await ctx.decoder
          .greedyDecode(x, n, { maxLength: choice.maxLength })
          .then((r) => r.tokens.map((tokens, i) => ({ tokens, logProb: r.logProbs[i]! })));
    for (const r of rows) decoded.push({ caption: ctx.vocab.decode(r.tokens), logProb: r.logProb });
  } else {
    for (let i = 0; i < n; i++) {
      const row = x.subarray(i * dim, (i + 1) * dim);
      const near = neighbours?.[i]?.map((nb) => nb.index) ?? [];
      if (choice.method === "rerank" && ctx.index && near.some((j) => ctx.index!.captions[j]?.length)) {
        decoded.push(await rerank(ctx, row, near, choice));
      } else {
        const beams = await ctx.decoder.beamSearch(row, {
          width: choice.beamWidth,
          lengthPenalty: choice.lengthPenalty,
          maxLength: choice.maxLength,
        });
        const [best] = beams;
        decoded.push({
          caption: ctx.vocab.decode(best?.tokens ?? []),
          logProb: best?.logProb ?? -Infinity,
          alternatives: beams.map((b) => ({
            caption: ctx.vocab.decode(b.tokens),
            logProb: b.logProb,
            score: b.score,
          })),
        });
      }
      if (i % 8 === 7) await tick();
    }
  }
  return decoded.map((d, i) => {
    const similarity = neighbours?.[i]?.[0]?.similarity ?? NaN;
    return {
      ...d,
      similarity,
      confidence: ctx.index ? ctx.index.confidence(similarity) : NaN,
      outOfDomain: ctx.index ? ctx.index.outOfDomain(similarity) : false,
    };
  });
}

/** The candidate (a caption of one of `images`) with the highest mean log-probability per token. */
async function rerank(
  ctx: CaptionContext,
  row: Float32Array,
  images: readonly number[],
  choice: DecodeChoice,
): Promise<{ caption: string; logProb: number }> {
  const index = ctx.index!;
  const seen = new Set<string>();
  const candidates: string[] = [];
  for (const i of images)
    for (const c of index.captions[i] ?? [])
      if (c && !seen.has(c)) {
        seen.add(c);
        candidates.push(c);
      }
  const maxWords = (choice.maxLength ?? Infinity) - 2;
  const sequences = candidates.map((c) =>
    c
      .split(" ")
      .slice(0, maxWords)
      .map((w) => ctx.vocab.idOf(w)),
  );
  const dim = row.length;
  const features = new Float32Array(sequences.length * dim);
  for (let i = 0; i < sequences.length; i++) features.set(row, i * dim);
  const { logProbs, lengths } = await ctx.decoder.scoreSequences(features, sequences);
  let best = 0;
  for (let i = 1; i < candidates.length; i++)
    if (logProbs[i]! / lengths[i]! > logProbs[best]! / lengths[best]!) best = i;
  return { caption: ctx.vocab.decode(sequences[best] ?? []), logProb: logProbs[best] ?? -Infinity };
}
