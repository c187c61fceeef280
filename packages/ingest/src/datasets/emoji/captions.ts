import { hexKey, type CaptionSources, type EmojibaseEntry } from "./sources.ts";

/**
 * Captions for one emoji, all human-written, nothing invented:
 *  1. its CLDR English name ("dog face");
 *  2. "a"/"an" + name, or "the flag of X" for "flag: X"; not for plurals, proper names, mass nouns;
 *  3. its Unicode name, when it differs and names no colour the CLDR name lacks (the Unicode name of
 *     the red heart is "HEAVY BLACK HEART"); single code points only (a sequence has no name);
 *  4. a short name that people use for it (GitHub / Slack / JoyPixels shortcodes, the shortest);
 *  5. "name: tag, tag" with the CLDR keywords that a second, independent source also uses (OpenMoji's
 *     own tags, the shortcodes, the Unicode name); this drops slang like "adorbs".
 * Duplicates (ignoring case and punctuation) are dropped, so an emoji gets 2 to 5 captions.
 */
export function emojiCaptions(e: EmojibaseEntry, src: CaptionSources): string[] {
  const name = e.label;
  const key = hexKey(e.hexcode);
  const flagOf = /^flag: (.+)$/.exec(name)?.[1];
  const out: string[] = [name];

  if (flagOf) out.push(`the flag of ${flagOf}`);
  else if (takesArticle(name)) out.push(`${articleFor(name)} ${name}`);

  const unicode = key.includes("-") ? undefined : src.unicodeNames[e.hexcode]?.toLowerCase();
  if (unicode && !addsColour(unicode, name)) out.push(unicode);

  const short = shortName(e.hexcode, name, src, Boolean(flagOf));
  if (short) out.push(short);

  const tags = confirmedTags(e, src);
  if (tags.length) out.push(`${name}: ${tags.join(", ")}`);

  const seen = new Set<string>();
  return out.filter((c) => {
    const k = comparable(c);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const COLOURS = [
  "black",
  "white",
  "red",
  "green",
  "blue",
  "yellow",
  "orange",
  "purple",
  "brown",
  "grey",
  "gray",
  "pink",
  "silver",
  "gold",
];

function words(s: string): string[] {
  return s
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

function comparable(s: string): string {
  return words(s).join(" ");
}

/** True when `text` names a colour that `name` does not. */
function addsColour(text: string, name: string): boolean {
  const have = new Set(words(name));
  return words(text).some((w) => COLOURS.includes(w) && !have.has(w));
}

const PLURAL_WORDS = new Set([
  "people",
  "men",
  "women",
  "children",
  "feet",
  "teeth",
  "mice",
  "geese",
  "folks",
]);
// Mass nouns and activities among CLDR names, where "a ..." would be wrong English.
const NO_ARTICLE = new Set([
  "rice",
  "bread",
  "butter",
  "salt",
  "popcorn",
  "spaghetti",
  "honey",
  "milk",
  "tea",
  "sake",
  "broccoli",
  "garlic",
  "ginger",
  "fondue",
  "curry",
  "stew",
  "oden",
  "sushi",
  "tempura",
  "hockey",
  "badminton",
  "tennis",
  "lacrosse",
  "softball",
  "cricket",
  "bowling",
  "cooking",
  "sauna",
  "yoga",
  "fog",
  "fire",
  "lightning",
  "snow",
  "water",
  "laundry",
  "luggage",
  "baggage",
  "money",
  "mail",
  "magic",
  "celebration",
  "recycling",
  "wrestling",
]);

/** Whether "a"/"an" + name is an English noun phrase that names one thing. */
function takesArticle(name: string): boolean {
  if (name.includes(":")) return false; // "keycap: 1", "man: red hair" — labels, not noun phrases
  if (/^\p{Lu}/u.test(name)) return false; // proper names: "Statue of Liberty", "Aquarius", "ATM sign"
  const head = name.toLowerCase().split(/ (?:with|of|in|on|behind|from|for|at|and|holding) /)[0]!;
  const hw = words(head);
  const last = hw[hw.length - 1];
  if (!last) return false;
  if (hw.some((w) => PLURAL_WORDS.has(w))) return false;
  if (/s$/.test(last) && !/(ss|us|is|os)$/.test(last)) return false; // "sparkles", "glasses", not "bus"
  if (NO_ARTICLE.has(last)) return false;
  if (hw.length === 1 && last.length > 4 && last.endsWith("ing")) return false; // activities: "cooking"
  return true;
}

function articleFor(name: string): "a" | "an" {
  const n = name.toLowerCase();
  if (/^(hour|honest|heir)/.test(n)) return "an";
  if (/^(uni|use|usu|ute|ure|uro|eu|ewe|one|once|ufo)/.test(n)) return "a";
  return /^[aeiou]/.test(n) ? "an" : "a";
}

/** The shortest community shortcode that is a real short name, not the CLDR name run together. */
function shortName(hexcode: string, name: string, src: CaptionSources, isFlag: boolean): string | undefined {
  const squashed = comparable(name).replace(/ /g, "");
  const candidates: string[] = [];
  for (const set of src.shortcodes) {
    const v = set[hexcode];
    for (const code of v === undefined ? [] : Array.isArray(v) ? v : [v]) {
      const text = code.replace(/[_-]+/g, " ").trim().toLowerCase();
      if (!/^[a-z ]+$/.test(text) || text.replace(/ /g, "").length < 3) continue;
      if (text.split(" ").some((w) => w.length === 1)) continue; // "a blood" (A button)
      // Flags: "flag fr" is an ISO code, not a name; emojibase's "france" is.
      if (isFlag && text.split(" ").some((w) => w.length <= 2)) continue;
      if (text.replace(/ /g, "") === squashed || addsColour(text, name)) continue;
      if (!candidates.includes(text)) candidates.push(text);
    }
  }
  // Shortest first; equal lengths keep source order (GitHub, Slack, JoyPixels): deterministic.
  return candidates
    .map((c, i) => [c, i] as const)
    .sort((a, b) => a[0].length - b[0].length || a[1] - b[1])[0]?.[0];
}

/** CLDR keywords confirmed by a second source; the name's own words are left out (nothing new). */
function confirmedTags(e: EmojibaseEntry, src: CaptionSources): string[] {
  const confirm = new Set<string>();
  for (const t of src.openmojiTags.get(hexKey(e.hexcode)) ?? []) {
    confirm.add(t);
    for (const w of words(t)) confirm.add(w);
  }
  for (const set of src.shortcodes) {
    const v = set[e.hexcode];
    for (const code of v === undefined ? [] : Array.isArray(v) ? v : [v])
      for (const w of code.split(/[_-]+/)) confirm.add(w.toLowerCase());
  }
  for (const w of words(src.unicodeNames[e.hexcode] ?? "")) confirm.add(w);
  const unicodeWords = unicodeVocabulary(src);
  const nameWords = new Set(words(e.label));
  return (e.tags ?? []).filter((t) => {
    const tl = t.toLowerCase();
    if (t.length <= 2 || t === t.toUpperCase()) return false; // ISO codes of flags: "FR"
    if (words(tl).every((w) => nameWords.has(w))) return false;
    return confirm.has(tl) || words(tl).every((w) => unicodeWords.has(w));
  });
}

const vocabularies = new WeakMap<CaptionSources, Set<string>>();

/**
 * Every word used in Unicode's character names of emoji: a formal vocabulary written by another
 * body than CLDR's keyword authors, with no slang ("adorbs", "lol" are not in it).
 */
function unicodeVocabulary(src: CaptionSources): Set<string> {
  let v = vocabularies.get(src);
  if (!v) {
    v = new Set(Object.values(src.unicodeNames).flatMap(words));
    vocabularies.set(src, v);
  }
  return v;
}
