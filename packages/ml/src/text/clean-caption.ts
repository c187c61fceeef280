/**
 * Caption cleaning as in the classic Flickr8k "InceptionV3 + LSTM" tutorial: lowercase, strip
 * punctuation and, optionally, one-letter tokens (its `len(w) > 1`). Tokens keep their digits: the
 * tutorial's `isalpha()` filter turned "keycap: 1", "keycap: 5" and "keycap: 8" all into "keycap", in
 * targets and references alike (issue 13); `lettersOnly` restores it. The tutorial's `<start>`/`<end>` tokens are NOT added here:
 * `Vocabulary.encode` adds them, so they can never be cleaned away or counted as words.
 *
 * One deliberate difference: the tutorial deletes every punctuation character, which glues
 * hyphenated compounds ("left-right arrow" -> "leftright"). Here only apostrophes are deleted
 * ("don't" -> "dont", as in the tutorial); other punctuation separates words ("left right arrow").
 * Any change to these rules must bump TEXT_VERSION (vocabulary.ts), because saved vocabularies
 * and encoded datasets depend on them.
 */
export interface CleanCaptionOptions {
  /** Drop tokens of one letter ("a", "s" left over from "man's"). Default false. */
  dropSingleLetters?: boolean;
  /** Drop tokens that contain anything but letters (the tutorial's `isalpha()`). Default false. */
  lettersOnly?: boolean;
}

const APOSTROPHES = /['\u2019\u02bc`\u00b4]/gu;
// Everything that is not a letter, a digit or a combining mark separates tokens.
const SEPARATORS = /[^\p{L}\p{N}\p{M}]+/gu;
const HAS_NON_LETTER = /[^\p{L}\p{M}]/u;

export function cleanCaption(raw: string, opts: CleanCaptionOptions = {}): string[] {
  const minLength = opts.dropSingleLetters ? 2 : 1;
  return raw
    .normalize("NFKC")
    .toLowerCase()
    .replace(APOSTROPHES, "")
    .split(SEPARATORS)
    .filter((token) => token.length >= minLength && !(opts.lettersOnly && HAS_NON_LETTER.test(token)));
}
