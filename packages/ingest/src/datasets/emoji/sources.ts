import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { Split } from "../types.ts";

/**
 * The npm packages the emoji dataset is built from, loaded once. Everything here is read from
 * pinned package versions, so the same versions give the same dataset.
 */
const require = createRequire(import.meta.url);

function readJson<T>(specifier: string): T {
  return JSON.parse(readFileSync(require.resolve(specifier), "utf8")) as T;
}

export interface EmojibaseEntry {
  label: string;
  hexcode: string;
  tags?: string[];
  group?: number;
  subgroup?: number;
  order?: number;
  skins?: EmojibaseEntry[];
}

export type Shortcodes = Record<string, string | string[]>;

interface OpenmojiEntry {
  hexcode: string;
  openmoji_tags: string;
  openmoji_author: string;
}

/** `1F436`, `2764-FE0F` → `1f436`, `2764`: the key all vendors agree on (FE0F is presentation only). */
export function hexKey(hexcode: string): string {
  return hexcode
    .toLowerCase()
    .split("-")
    .filter((cp) => cp !== "fe0f")
    .join("-");
}

export interface CaptionSources {
  /** Emojibase English data (CLDR names and keywords). */
  emoji: EmojibaseEntry[];
  unicodeNames: Record<string, string>;
  /** Shortcode sets (GitHub, Slack/iamcal, JoyPixels, Emojibase): human-given short names. */
  shortcodes: Shortcodes[];
  /** OpenMoji's own tags, by hexKey: written by OpenMoji's designers, independent of CLDR. */
  openmojiTags: Map<string, string[]>;
}

export function loadCaptionSources(): CaptionSources {
  const openmoji = readJson<OpenmojiEntry[]>("openmoji/data/openmoji.json");
  const openmojiTags = new Map<string, string[]>();
  for (const e of openmoji) {
    const tags = e.openmoji_tags
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean);
    if (tags.length) openmojiTags.set(hexKey(e.hexcode), tags);
  }
  return {
    emoji: readJson<EmojibaseEntry[]>("emojibase-data/en/data.json"),
    unicodeNames: readJson<Record<string, string>>("emojibase-data/meta/unicode-names.json"),
    shortcodes: ["github", "iamcal", "joypixels", "emojibase"].map((s) =>
      readJson<Shortcodes>(`emojibase-data/en/shortcodes/${s}.json`),
    ),
    openmojiTags,
  };
}

// ---------------------------------------------------------------------------------------------
// Art styles

export const STYLE_IDS = ["noto", "twemoji", "openmoji", "noto-v1", "emojione", "fluent"] as const;
export type StyleId = (typeof STYLE_IDS)[number];

/** Held-out art styles: the model is tested on a style it never saw. */
export const STYLE_SPLIT: Readonly<Record<StyleId, Split>> = {
  noto: "train",
  twemoji: "train",
  openmoji: "train",
  "noto-v1": "train",
  emojione: "val",
  fluent: "test",
};

export interface Style {
  id: StyleId;
  title: string;
  pkg: string;
  version: string;
  license: string;
  author: string;
  /** SVG source for an emoji, drawn `size` px square; undefined when the style lacks it. */
  svg(key: string, size: number): string | undefined;
  has(key: string): boolean;
}

interface IconifyIcon {
  body?: string;
  parent?: string;
  left?: number;
  top?: number;
  width?: number;
  height?: number;
  rotate?: number;
  hFlip?: boolean;
  vFlip?: boolean;
}

interface IconifySet {
  icons: Record<string, IconifyIcon>;
  aliases?: Record<string, IconifyIcon>;
  left?: number;
  top?: number;
  width?: number;
  height?: number;
}

interface PackageJson {
  name: string;
  version: string;
  license?: string;
  author?: string | { name: string; url?: string };
}

function authorOf(a: PackageJson["author"] | { name: string; url?: string }): string | undefined {
  if (!a) return undefined;
  if (typeof a === "string") return a;
  return a.url ? `${a.name} (${a.url})` : a.name;
}

/** Resolves an Iconify icon or alias (aliases may flip/rotate their parent) to one SVG. */
export function iconifySvg(set: IconifySet, name: string, size: number): string | undefined {
  let icon: IconifyIcon | undefined = set.icons[name];
  let hFlip = false;
  let vFlip = false;
  let rotate = 0;
  let overrides: IconifyIcon = {};
  for (let depth = 0; !icon && depth < 5; depth++) {
    const alias: IconifyIcon | undefined = set.aliases?.[name];
    if (!alias?.parent) return undefined;
    hFlip = hFlip !== Boolean(alias.hFlip);
    vFlip = vFlip !== Boolean(alias.vFlip);
    rotate += alias.rotate ?? 0;
    overrides = { ...alias, ...overrides };
    name = alias.parent;
    icon = set.icons[name];
  }
  if (!icon?.body) return undefined;
  const left = overrides.left ?? icon.left ?? set.left ?? 0;
  const top = overrides.top ?? icon.top ?? set.top ?? 0;
  const width = overrides.width ?? icon.width ?? set.width ?? 16;
  const height = overrides.height ?? icon.height ?? set.height ?? 16;
  hFlip = hFlip !== Boolean(icon.hFlip);
  vFlip = vFlip !== Boolean(icon.vFlip);
  rotate = (rotate + (icon.rotate ?? 0)) % 4;
  const transforms: string[] = [];
  if (hFlip || vFlip) {
    transforms.push(
      `translate(${hFlip ? 2 * left + width : 0} ${vFlip ? 2 * top + height : 0}) scale(${hFlip ? -1 : 1} ${vFlip ? -1 : 1})`,
    );
  }
  if (rotate) transforms.unshift(`rotate(${rotate * 90} ${left + width / 2} ${top + height / 2})`);
  const body = transforms.length ? `<g transform="${transforms.join(" ")}">${icon.body}</g>` : icon.body;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${size}" height="${size}" ` +
    `viewBox="${left} ${top} ${width} ${height}">${body}</svg>`
  );
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
}

/**
 * Loads the six styles. Noto, Twemoji and Fluent ship a codepoint → icon map (`chars.json`); old Noto
 * and EmojiOne do not, so their icons are found by the name the other sets give the same codepoints
 * (Iconify names icons after the CLDR name), then by the slug of the CLDR name, then without a
 * parenthesis ("A button (blood type)" was "A button" in older CLDR).
 */
export function loadStyles(emoji: readonly EmojibaseEntry[]): Style[] {
  const byChars = new Map<string, Map<string, string>>();
  const nameByKey = new Map<string, string[]>();
  const iconify = (id: StyleId, pkg: string, title: string, withChars: boolean): Style => {
    const set = readJson<IconifySet>(`${pkg}/icons.json`);
    const info = readJson<{ author?: { name: string; url?: string } }>(`${pkg}/info.json`);
    const meta = readJson<PackageJson>(`${pkg}/package.json`);
    const map = new Map<string, string>();
    const exists = (n: string) => set.icons[n] !== undefined || set.aliases?.[n] !== undefined;
    if (withChars) {
      const chars = readJson<Record<string, string>>(`${pkg}/chars.json`);
      // Sorted so that the first of two spellings of a codepoint wins in every run.
      for (const k of Object.keys(chars).sort()) {
        const key = hexKey(k);
        const name = chars[k]!;
        if (!map.has(key) && exists(name)) map.set(key, name);
        const names = nameByKey.get(key) ?? [];
        if (!names.includes(name)) names.push(name);
        nameByKey.set(key, names);
      }
      byChars.set(id, map);
    } else {
      const all = (e: EmojibaseEntry): EmojibaseEntry[] => [e, ...(e.skins ?? []).flatMap(all)];
      for (const e of emoji.flatMap(all)) {
        const key = hexKey(e.hexcode);
        const candidates = [
          ...(nameByKey.get(key) ?? []),
          slug(e.label),
          slug(e.label.replace(/\s*\([^)]*\)/g, "")),
        ];
        const found = candidates.find(exists);
        if (found) map.set(key, found);
      }
    }
    return {
      id,
      title,
      pkg,
      version: meta.version,
      license: meta.license ?? "see package",
      author: authorOf(meta.author) ?? authorOf(info.author) ?? "see package",
      has: (key) => map.has(key),
      svg: (key, size) => {
        const name = map.get(key);
        return name === undefined ? undefined : iconifySvg(set, name, size);
      },
    };
  };

  const openmojiDir = path.dirname(require.resolve("openmoji/package.json"));
  const openmojiMeta = readJson<PackageJson>("openmoji/package.json");
  const openmojiFiles = new Map<string, string>();
  for (const e of readJson<OpenmojiEntry[]>("openmoji/data/openmoji.json")) {
    const file = path.join(openmojiDir, "color", "svg", `${e.hexcode}.svg`);
    const key = hexKey(e.hexcode);
    if (!openmojiFiles.has(key) && existsSync(file)) openmojiFiles.set(key, file);
  }
  const openmoji: Style = {
    id: "openmoji",
    title: "OpenMoji",
    pkg: "openmoji",
    version: openmojiMeta.version,
    license: openmojiMeta.license ?? "see package",
    author:
      authorOf(openmojiMeta.author) ??
      citationAuthors(path.join(openmojiDir, "CITATION.cff")) ??
      "see package",
    has: (key) => openmojiFiles.has(key),
    svg: (key, size) => {
      const file = openmojiFiles.get(key);
      if (!file) return undefined;
      // OpenMoji's root <svg> has only a viewBox (72×72): give it the pixel size to render at.
      return readFileSync(file, "utf8").replace(/<svg\b([^>]*)>/, (_m, attrs: string) => {
        const rest = attrs.replace(/\s(width|height)="[^"]*"/g, "");
        return `<svg${rest} width="${size}" height="${size}">`;
      });
    },
  };

  // Order matters: the sets with chars.json first, so old Noto / EmojiOne can borrow their names.
  const noto = iconify("noto", "@iconify-json/noto", "Google Noto Color Emoji", true);
  const twemoji = iconify("twemoji", "@iconify-json/twemoji", "Twemoji", true);
  const fluent = iconify("fluent", "@iconify-json/fluent-emoji-flat", "Microsoft Fluent Emoji (flat)", true);
  const notoV1 = iconify("noto-v1", "@iconify-json/noto-v1", "Google Noto Emoji (v1, old style)", false);
  const emojione = iconify("emojione", "@iconify-json/emojione", "EmojiOne 2.3", false);
  const byId = { noto, twemoji, openmoji, "noto-v1": notoV1, emojione, fluent };
  return STYLE_IDS.map((id) => byId[id]);
}

/** The authors named in a CITATION.cff (OpenMoji's package.json names none). */
function citationAuthors(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, "utf8");
  const block = text.split(/^authors:\s*$/m)[1];
  if (!block) return undefined;
  const names: string[] = [];
  for (const entry of block.split(/^\s*-\s+/m).slice(1)) {
    const field = (k: string) => entry.match(new RegExp(`^\\s*${k}:\\s*"?([^"\\n]+)"?`, "m"))?.[1]?.trim();
    const name = field("name") ?? [field("given-names"), field("family-names")].filter(Boolean).join(" ");
    const affiliation = field("affiliation");
    if (name) names.push(affiliation ? `${name} (${affiliation})` : name);
    if (/^\S/m.test(entry.split("\n").slice(1).join("\n"))) break; // next top-level key
  }
  return names.length ? names.join(", ") : undefined;
}
