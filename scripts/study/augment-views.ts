/**
 * Which augmented views help recognition of an unseen art style, for how many extra encodes?
 * Encodes the emoji dataset (clean), the 64-px test render (clean) and augmented views of the training
 * images through the same decode path the feature workers use, and writes the vectors as .npy with a
 * JSON index per set, so that a classifier or the trainer can be fitted on any combination.
 *
 *   pnpm exec tsx scripts/study/augment-views.ts --out /tmp/aug --size demo --views mix:2,lowres:1
 *   python3 scripts/study/probe.py /tmp/aug        # linear probe + 1-NN identity accuracy per set
 *
 * `--views recipe:n[:every]` encodes views 1..n of recipe on the training images of every `every`-th
 * emoji (default 1: all). Sets already written are reused.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { AUGMENT_RECIPES, encodeNpy, type AugmentRecipe } from "@capflow/common";
import { loadEncoder, PIXELS_PER_IMAGE, preprocessImage, type Encoder } from "@capflow/ml";
import { buildEmojiDataset } from "@capflow/ingest";

interface Item {
  file: string;
  path: string;
  split: "train" | "val" | "test";
  emoji: string;
}

async function listDataset(dir: string): Promise<Item[]> {
  const split = new Map<string, Item["split"]>();
  for (const [s, f] of [
    ["train", "Flickr_8k.trainImages.txt"],
    ["val", "Flickr_8k.devImages.txt"],
    ["test", "Flickr_8k.testImages.txt"],
  ] as const)
    for (const n of (await readFile(path.join(dir, f), "utf8")).split("\n").filter(Boolean)) split.set(n, s);
  return [...split.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([file, s]) => ({
      file,
      path: path.join(dir, "Images", file),
      split: s,
      emoji: file.replace(/^(noto-v1|noto|twemoji|openmoji|emojione|fluent)-/, "").replace(/\.png$/, ""),
    }));
}

async function encodeSet(
  enc: Encoder,
  out: string,
  name: string,
  items: Item[],
  view?: { index: number; recipe: AugmentRecipe },
): Promise<void> {
  const npy = path.join(out, `${name}.npy`);
  if (existsSync(npy)) return;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const vectors = new Float32Array(items.length * enc.dim);
  const batch = 8;
  let decodeMs = 0;
  for (let i = 0; i < items.length; i += batch) {
    const part = items.slice(i, i + batch);
    const t0 = performance.now();
    const pixels = new Float32Array(part.length * PIXELS_PER_IMAGE);
    await Promise.all(
      part.map(async (it, j) => {
        const r = await preprocessImage(await readFile(it.path), view ? { view } : {});
        if (!r.ok) throw new Error(`${it.file}: ${r.message}`);
        pixels.set(r.pixels, j * PIXELS_PER_IMAGE);
      }),
    );
    decodeMs += performance.now() - t0;
    vectors.set(await enc.encode(pixels, part.length), i * enc.dim);
  }
  const cpu = process.cpuUsage(cpu0);
  await writeFile(npy, encodeNpy(vectors, items.length, enc.dim, "float32"));
  await writeFile(
    path.join(out, `${name}.json`),
    JSON.stringify({ name, view, items: items.map(({ file, split, emoji }) => ({ file, split, emoji })) }),
  );
  const s = (performance.now() - started) / 1000;
  console.log(
    `${name}: ${items.length} images in ${s.toFixed(0)} s (${(items.length / s).toFixed(1)} img/s, ` +
      `decode ${(decodeMs / items.length).toFixed(0)} ms/img wall, ${((cpu.user + cpu.system) / 1000 / items.length).toFixed(0)} CPU ms/img; load ${loadavg()[0]!.toFixed(1)})`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "/tmp/capflow-augment-study" },
      size: { type: "string", default: "demo" },
      views: { type: "string", default: "mix:2" },
      render: { type: "string", default: "64" },
      threads: { type: "string", default: "2" },
    },
  });
  const out = path.resolve(values.out);
  const size = values.size as "ci" | "demo";
  await mkdir(out, { recursive: true });
  const dataDir = path.join(out, `emoji-${size}`);
  const renderDir = path.join(out, `emoji-${size}-render-${values.render}`);
  if (!existsSync(path.join(dataDir, "captions.txt"))) await buildEmojiDataset(dataDir, { size });
  if (!existsSync(path.join(renderDir, "captions.txt")))
    await buildEmojiDataset(renderDir, { size, testRender: Number(values.render) });
  const items = await listDataset(dataDir);
  const render = await listDataset(renderDir);
  const enc = await loadEncoder({ runtime: "onnx", threads: Number(values.threads) });
  try {
    await encodeSet(enc, out, "clean", items);
    await encodeSet(enc, out, `render${values.render}`, render);
    const train = items.filter((i) => i.split === "train");
    const emojiOrder = [...new Set(train.map((i) => i.emoji))].sort();
    for (const spec of values.views.split(",").filter(Boolean)) {
      const [recipe, n, every = "1"] = spec.split(":");
      if (!(AUGMENT_RECIPES as readonly string[]).includes(recipe!)) throw new Error(`recipe ${recipe}?`);
      const keep = new Set(emojiOrder.filter((_, i) => i % Number(every) === 0));
      const subset = train.filter((i) => keep.has(i.emoji));
      for (let v = 1; v <= Number(n); v++)
        await encodeSet(enc, out, `${recipe}-v${v}${every === "1" ? "" : `-every${every}`}`, subset, {
          index: v,
          recipe: recipe as AugmentRecipe,
        });
    }
  } finally {
    await enc.dispose();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
