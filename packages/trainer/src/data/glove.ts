import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { Vocabulary } from "@capflow/ml";

/**
 * Word vectors in GloVe's text format (`word v1 v2 … vd` a line) for the vocabulary, as the tutorial
 * uses them: row i is the vector of token i; words the file lacks (and the special tokens) stay zero.
 * Streams the file: a 400k-word GloVe never sits in memory, only the vocabulary's rows.
 */
export async function loadGloveEmbeddings(
  input: Readable,
  vocab: Vocabulary,
  dim: number,
): Promise<{ matrix: Float32Array<ArrayBuffer>; found: number }> {
  const matrix = new Float32Array(vocab.size * dim);
  let found = 0;
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    const space = text.indexOf(" ");
    if (space <= 0) continue;
    const word = text.slice(0, space);
    const id = vocab.idOf(word);
    if (id < 4 || vocab.tokenOf(id) !== word) continue;
    const values = text
      .slice(space + 1)
      .trim()
      .split(" ");
    if (values.length !== dim) {
      throw new Error(`word vectors line ${line}: "${word}" has ${values.length} values, expected ${dim}`);
    }
    for (let k = 0; k < dim; k++) matrix[id * dim + k] = Number(values[k]);
    found++;
  }
  return { matrix, found };
}
