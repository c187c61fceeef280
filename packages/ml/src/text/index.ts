export { cleanCaption, type CleanCaptionOptions } from "./clean-caption.ts";
export {
  buildVocabulary,
  vocabularyFromJSON,
  Vocabulary,
  TEXT_VERSION,
  PAD,
  START,
  END,
  UNK,
  PAD_ID,
  START_ID,
  END_ID,
  UNK_ID,
  SPECIAL_TOKENS,
  type VocabularyJSON,
  type VocabularyOptions,
} from "./vocabulary.ts";
