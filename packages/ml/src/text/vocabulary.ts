/**
 * Word vocabulary for the caption decoder. Deterministic: ids depend only on the token counts
 * (count descending, then token by code unit), never on input order or locale. Saved as JSON next
 * to a dataset / checkpoint, stamped with TEXT_VERSION so that a model is never decoded with the
 * rules of another version.
 */

/** Bump when cleaning or encoding rules change: saved vocabularies then refuse to load. 2: digits kept. */
export const TEXT_VERSION = 2;

export const PAD = "<pad>";
export const START = "<start>";
export const END = "<end>";
export const UNK = "<unk>";
export const SPECIAL_TOKENS = [PAD, START, END, UNK] as const;
export const PAD_ID = 0;
export const START_ID = 1;
export const END_ID = 2;
export const UNK_ID = 3;

export interface VocabularyOptions {
  /** Keep words seen at least this many times (the tutorial used 10 on Flickr8k). */
  minCount: number;
  /** Cap on the total size, special tokens included. */
  maxSize?: number;
}

export interface VocabularyJSON {
  textVersion: number;
  minCount: number;
  maxSize: number | null;
  /** Index = id. Starts with the special tokens. */
  tokens: string[];
  /** Training counts of `tokens` (0 for the special tokens). */
  counts: number[];
}

export interface Vocabulary {
  readonly size: number;
  readonly textVersion: number;
  readonly tokens: readonly string[];
  idOf(token: string): number;
  tokenOf(id: number): string;
  /** `<start>` + word ids (`<unk>` for unknown words) + `<end>`, padded with 0 to `maxLen`.
   *  Too long captions lose words from the end; `<end>` is always kept. */
  encode(tokens: readonly string[], maxLen: number): Int32Array;
  /** The words up to the first `<end>`, without special tokens other than `<unk>`. */
  decode(ids: ArrayLike<number>): string;
  toJSON(): VocabularyJSON;
}

class VocabularyImpl implements Vocabulary {
  readonly textVersion = TEXT_VERSION;
  private readonly ids: Map<string, number>;

  constructor(
    readonly tokens: readonly string[],
    private readonly counts: readonly number[],
    private readonly minCount: number,
    private readonly maxSize: number | null,
  ) {
    this.ids = new Map(tokens.map((t, i) => [t, i]));
  }

  get size(): number {
    return this.tokens.length;
  }

  idOf(token: string): number {
    return this.ids.get(token) ?? UNK_ID;
  }

  tokenOf(id: number): string {
    return this.tokens[id] ?? UNK;
  }

  encode(tokens: readonly string[], maxLen: number): Int32Array {
    if (!Number.isInteger(maxLen) || maxLen < 2) {
      throw new Error(`encode: maxLen must be an integer >= 2 (room for <start> and <end>), got ${maxLen}`);
    }
    const out = new Int32Array(maxLen); // zero-filled = <pad>
    const words = Math.min(tokens.length, maxLen - 2);
    out[0] = START_ID;
    for (let i = 0; i < words; i++) out[i + 1] = this.idOf(tokens[i] as string);
    out[words + 1] = END_ID;
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id === END_ID) break;
      if (id === PAD_ID || id === START_ID) continue;
      words.push(this.tokenOf(id));
    }
    return words.join(" ");
  }

  toJSON(): VocabularyJSON {
    return {
      textVersion: this.textVersion,
      minCount: this.minCount,
      maxSize: this.maxSize,
      tokens: [...this.tokens],
      counts: [...this.counts],
    };
  }
}

const bySpecial = new Set<string>(SPECIAL_TOKENS);

export function buildVocabulary(
  tokenLists: Iterable<readonly string[]>,
  opts: VocabularyOptions,
): Vocabulary {
  const counts = new Map<string, number>();
  countWords(counts, tokenLists);
  return vocabularyFromCounts(counts, opts);
}

/** Adds the words of `tokenLists` to `counts` (special tokens are never counted). */
export function countWords(counts: Map<string, number>, tokenLists: Iterable<readonly string[]>): void {
  for (const tokens of tokenLists) {
    for (const t of tokens) {
      if (bySpecial.has(t)) continue; // never let data redefine a special token
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
  }
}

/**
 * The vocabulary of word counts gathered a shard at a time (the trainer streams its captions): the same
 * vocabulary `buildVocabulary` gives for the same words, whatever order they were counted in.
 */
export function vocabularyFromCounts(
  counts: ReadonlyMap<string, number>,
  opts: VocabularyOptions,
): Vocabulary {
  if (!Number.isInteger(opts.minCount) || opts.minCount < 1) {
    throw new Error(`buildVocabulary: minCount must be an integer >= 1, got ${opts.minCount}`);
  }
  if (
    opts.maxSize !== undefined &&
    (!Number.isInteger(opts.maxSize) || opts.maxSize < SPECIAL_TOKENS.length)
  ) {
    throw new Error(
      `buildVocabulary: maxSize must be an integer >= ${SPECIAL_TOKENS.length}, got ${opts.maxSize}`,
    );
  }
  const kept = [...counts]
    .filter(([t, n]) => n >= opts.minCount && !bySpecial.has(t))
    .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0));
  const room = opts.maxSize === undefined ? kept.length : opts.maxSize - SPECIAL_TOKENS.length;
  const words = kept.slice(0, room);
  return new VocabularyImpl(
    [...SPECIAL_TOKENS, ...words.map(([t]) => t)],
    [...SPECIAL_TOKENS.map(() => 0), ...words.map(([, n]) => n)],
    opts.minCount,
    opts.maxSize ?? null,
  );
}

export function vocabularyFromJSON(json: unknown): Vocabulary {
  const j = json as Partial<VocabularyJSON> | null;
  if (!j || typeof j !== "object") throw new Error("vocabulary JSON: not an object");
  if (j.textVersion !== TEXT_VERSION) {
    throw new Error(
      `vocabulary JSON: textVersion ${String(j.textVersion)} does not match this build's ${TEXT_VERSION}`,
    );
  }
  const { tokens, counts } = j;
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "string")) {
    throw new Error("vocabulary JSON: tokens must be an array of strings");
  }
  if (
    !Array.isArray(counts) ||
    counts.length !== tokens.length ||
    !counts.every((n) => Number.isInteger(n))
  ) {
    throw new Error("vocabulary JSON: counts must be integers, one per token");
  }
  SPECIAL_TOKENS.forEach((s, i) => {
    if (tokens[i] !== s) throw new Error(`vocabulary JSON: id ${i} must be ${s}, got ${String(tokens[i])}`);
  });
  if (new Set(tokens).size !== tokens.length) throw new Error("vocabulary JSON: duplicate tokens");
  return new VocabularyImpl(
    tokens,
    counts,
    typeof j.minCount === "number" ? j.minCount : 1,
    j.maxSize ?? null,
  );
}

/** Namespace-style access: `Vocabulary.fromJSON(json)`. */
export const Vocabulary = { fromJSON: vocabularyFromJSON };
