import fs from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";

/** Small real images of varied content, drawn with sharp (decodable PNG/JPEG bytes, not stubs). */
export async function drawImage(seed: number, format: "png" | "jpeg" = "png", size = 96): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
    <rect width="100%" height="100%" fill="hsl(${(seed * 47) % 360},70%,80%)"/>
    <circle cx="${20 + ((seed * 13) % 50)}" cy="${30 + ((seed * 7) % 40)}" r="${10 + (seed % 20)}" fill="hsl(${(seed * 91) % 360},80%,40%)"/>
    <rect x="${(seed * 17) % 60}" y="${(seed * 29) % 60}" width="25" height="18" fill="hsl(${(seed * 131) % 360},60%,30%)"/>${
      // The shapes above repeat every 1,800 seeds; a mark of the cycle keeps larger sets distinct
      // (and every image below 1,800 as it always was).
      seed >= 1800
        ? `<rect x="${(Math.floor(seed / 1800) * 11) % 80}" y="2" width="6" height="6" fill="hsl(${(seed * 7) % 360},90%,50%)"/>`
        : ""
    }
  </svg>`;
  const img = sharp(Buffer.from(svg));
  return format === "png" ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

/**
 * A jsonl-folder dataset of `n` drawn images plus the given bad files, with two captions each.
 * Returns the folder.
 */
export async function writeJsonlDataset(
  dir: string,
  n: number,
  bad: Record<string, Buffer> = {},
): Promise<string> {
  await fs.mkdir(path.join(dir, "img"), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `img/${String(i).padStart(4, "0")}.${i % 2 ? "jpg" : "png"}`;
    await fs.writeFile(path.join(dir, name), await drawImage(i, i % 2 ? "jpeg" : "png"));
    lines.push(
      JSON.stringify({ image: name, captions: [`a drawing number ${i}`, `shapes on a coloured background`] }),
    );
  }
  for (const [name, bytes] of Object.entries(bad)) {
    await fs.writeFile(path.join(dir, "img", name), bytes);
    lines.push(JSON.stringify({ image: `img/${name}`, captions: ["a broken file"] }));
  }
  await fs.writeFile(path.join(dir, "captions.jsonl"), `${lines.join("\n")}\n`);
  return dir;
}
