import { buildEmojiDataset } from "/work/main/packages/ingest/src/datasets/emoji/build-emoji-dataset.ts";
const size = (process.argv[2] ?? "ci") as "ci" | "default";
const t = Date.now();
const r = await buildEmojiDataset(process.argv[3] ?? "/tmp/emoji-" + size, { size, lowRes: process.argv[4] === "low" });
console.log(size, r.counts, ((Date.now() - t) / 1000).toFixed(1) + " s");
