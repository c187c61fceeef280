export { corpusBleu, bleuScores, BLEU_WEIGHTS } from "./bleu.ts";
export { ciderD } from "./cider.ts";
export type { CiderOptions } from "./cider.ts";
export { buildRetrievalIndex } from "./retrieval-baseline.ts";
export type { RetrievalIndex } from "./retrieval-baseline.ts";
export type { Token } from "./ngrams.ts";
