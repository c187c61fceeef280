import type { CaptionModel, Vocabulary } from "@capflow/ml";
import { bleuScores, ciderD } from "./index.ts";

export interface CaptionScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  cider: number;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Captions for every row of `features`, greedy (batched) or beam search. Yields to the event loop
 * between chunks so BullMQ can renew the job's lock during a long evaluation.
 */
export async function captionFeatures(
  model: CaptionModel,
  vocab: Vocabulary,
  features: Float32Array,
  dim: number,
  opts: { method: "greedy" | "beam"; beamWidth: number; chunk?: number },
): Promise<string[]> {
  const n = features.length / dim;
  const out: string[] = [];
  if (opts.method === "greedy") {
    const chunk = opts.chunk ?? 64;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const { tokens } = model.greedyDecode(features.subarray(i * dim, (i + m) * dim), m);
      out.push(...tokens.map((t) => vocab.decode(t)));
      await tick();
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const beams = model.beamSearch(features.subarray(i * dim, (i + 1) * dim), { width: opts.beamWidth });
    out.push(vocab.decode(beams[0]?.tokens ?? []));
    if (i % 8 === 7) await tick();
  }
  return out;
}

/** Corpus BLEU-1..4 (NLTK's corpus_bleu) and CIDEr-D of captions against cleaned references. */
export function scoreCaptions(
  hypotheses: readonly string[],
  references: readonly (readonly string[][])[],
): CaptionScores {
  const hyps = hypotheses.map((h) => (h ? h.split(" ") : []));
  const bleu = bleuScores(references, hyps);
  return { ...bleu, cider: ciderD(references, hyps).score };
}
