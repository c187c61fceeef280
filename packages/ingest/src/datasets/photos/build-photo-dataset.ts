import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";

/**
 * `capflow dataset photos`: real photographs from Debian's packages, as a check set for the
 * out-of-domain flag (a captioner trained on emoji should say it does not know them). The default
 * source is `mate-backgrounds` (`apt-get install mate-backgrounds`): its `nature/` folder holds twelve
 * photographs (flowers, a ladybird, rain drops, a meadow, a storm, wood...). `gnome-backgrounds` 43,
 * which the issue first pointed at, now ships illustrations and SVGs only, no photographs.
 *
 * Written as a jsonl-folder dataset, every image in the test split, captioned with the words of its
 * file name ("GreenMeadow.jpg" → "green meadow"): a weak reference, but it is what the package says.
 * Photos are re-encoded at most 1024 px on the long side (JPEG q90), so ingest stays cheap; the same
 * files and sharp version give the same bytes.
 */
export const DEFAULT_PHOTO_SOURCES = ["/usr/share/backgrounds/mate/nature"];
const MAX_SIDE = 1024;
const RASTER = /\.(jpe?g|png|webp)$/i;

export interface BuildPhotoResult {
  dir: string;
  images: number;
  sources: string[];
}

/** "GreenMeadow.jpg" → "green meadow"; "Elephants_3840x2160.jpg" → "elephants". */
export function captionFromFileName(file: string): string {
  return path
    .basename(file)
    .replace(/\.[^.]+$/, "")
    .replace(/[_-]?\d+x\d+$/, "")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/[_-]+/g, " ")
    .toLowerCase()
    .trim();
}

export async function buildPhotoDataset(
  outDir: string,
  sources: readonly string[] = DEFAULT_PHOTO_SOURCES,
): Promise<BuildPhotoResult> {
  const files: string[] = [];
  for (const src of sources) {
    let names: string[];
    try {
      names = await readdir(src);
    } catch {
      throw new Error(
        `no photographs at ${src}: install them with \`apt-get install mate-backgrounds\`, or pass another folder`,
      );
    }
    for (const n of names.sort()) if (RASTER.test(n)) files.push(path.join(src, n));
  }
  if (files.length === 0) throw new Error(`no JPEG, PNG or WebP files in ${sources.join(", ")}`);
  const imagesDir = path.join(outDir, "images");
  await rm(imagesDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });
  const lines: string[] = [];
  const used = new Set<string>();
  for (const file of files) {
    const caption = captionFromFileName(file);
    let name = `${caption.replace(/ /g, "-")}.jpg`;
    for (let i = 2; used.has(name); i++) name = `${caption.replace(/ /g, "-")}-${i}.jpg`;
    used.add(name);
    const jpg = await sharp(file, { failOn: "error" })
      .rotate()
      .resize(MAX_SIDE, MAX_SIDE, { fit: "inside", withoutEnlargement: true })
      .flatten({ background: "#ffffff" })
      .jpeg({ quality: 90 })
      .toBuffer();
    await writeFile(path.join(imagesDir, name), jpg);
    lines.push(
      JSON.stringify({
        image: `images/${name}`,
        captions: [caption, `a photo of ${caption}`],
        split: "test",
      }),
    );
  }
  await writeFile(path.join(outDir, "captions.jsonl"), lines.join("\n") + "\n");
  return { dir: outDir, images: files.length, sources: [...sources] };
}
