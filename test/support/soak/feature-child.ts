// The feature path of the memory soak (docs/reliability.md test 14), alone in its process so that its RSS
// is its own: the feature worker's shard job body (store → preprocessImage → ONNX encoder, two batches
// decoded ahead) over `total` images, cycling through the images listed in `listFile`, one shard of
// `shardSize` at a time. A sample (after a forced GC) at the start and every `every` images.
//   node --expose-gc --import tsx feature-child.ts <storeDir> <listFile> <total> <every> <shardSize> [mode]
// Modes, to tell where RSS growth comes from: `pipeline` (default, the above), `decode`
// (preprocessImage only, no encoder), `encode` (the encoder only, on 64 images decoded once).
import { readFile } from "node:fs/promises";
import { LocalStore, type ShardFailure, type ShardList } from "@capflow/common";
import { PIXELS_PER_IMAGE, loadEncoder, loadTf, preprocessImage, type Encoder } from "@capflow/ml";
import { extractShard } from "@capflow/feature-worker";
import { emit, takeSample } from "./memory.ts";
import type { SoakImage } from "./images.ts";

const [storeDir, listFile, totalArg, everyArg, shardArg, modeArg = "pipeline"] = process.argv.slice(2);
const mode = modeArg as "pipeline" | "decode" | "encode";
const total = Number(totalArg);
const every = Number(everyArg);
const shardSize = Number(shardArg);
if (
  !storeDir ||
  !listFile ||
  !(total > 0) ||
  !(every > 0) ||
  !(shardSize > 0) ||
  every % shardSize !== 0 ||
  !["pipeline", "decode", "encode"].includes(mode)
)
  throw new Error(
    "usage: feature-child <storeDir> <listFile> <total> <every (a multiple of shardSize)> <shardSize> [pipeline|decode|encode]",
  );

const store = new LocalStore(storeDir);
const images = JSON.parse(await readFile(listFile, "utf8")) as SoakImage[];
// tfjs is loaded only to show that this path holds no tensors (the encoder runs on onnxruntime).
const { tf } = await loadTf({ backend: "wasm" });
const encoder = await loadEncoder({ runtime: "onnx", logger: { info: () => {}, warn: () => {} } });
emit({ soak: "ready", backend: encoder.backend, pid: process.pid });

type ShardOut = { ids: string[]; vectors: Float32Array; failures: ShardFailure[] };

/** preprocessImage only: "vectors" are left empty. */
async function decodeOnly(list: ShardList): Promise<ShardOut> {
  const out: ShardOut = { ids: [], vectors: new Float32Array(0), failures: [] };
  for (const { id, key } of list.images) {
    const r = await preprocessImage(await store.get(key));
    if (r.ok) out.ids.push(id);
    else out.failures.push({ id, reason: r.reason, message: r.message });
  }
  out.vectors = new Float32Array(out.ids.length * encoder.dim);
  return out;
}

/** The encoder only, in batches of 8, on pixels decoded once up front. */
async function encodeOnly(
  enc: Encoder,
  pixels: Float32Array[],
  list: ShardList,
  from: number,
): Promise<ShardOut> {
  const ids = list.images.map((im) => im.id);
  const vectors = new Float32Array(ids.length * enc.dim);
  for (let b = 0; b < ids.length; b += 8) {
    const n = Math.min(8, ids.length - b);
    const batch = new Float32Array(n * PIXELS_PER_IMAGE);
    for (let k = 0; k < n; k++) batch.set(pixels[(from + b + k) % pixels.length]!, k * PIXELS_PER_IMAGE);
    vectors.set(await enc.encode(batch, n), b * enc.dim);
  }
  return { ids, vectors, failures: [] };
}

const decoded: Float32Array[] = [];
if (mode === "encode") {
  for (const im of images.filter((i) => !i.bad).slice(0, 64)) {
    const r = await preprocessImage(await store.get(im.key));
    if (r.ok) decoded.push(r.pixels);
  }
}
emit({ soak: "sample", ...takeSample(0, tf) });

const counts = { encoded: 0, refused: 0, goodRefused: 0, badEncoded: 0, nonFinite: 0 };
const byId = new Map(images.map((im) => [im.id, im]));
for (let done = 0, shard = 0; done < total; shard++) {
  const n = Math.min(shardSize, total - done);
  const list: ShardList = {
    dataset: "soak",
    shardId: `s${shard}`,
    images: Array.from({ length: n }, (_, k) => {
      const im = images[(done + k) % images.length]!;
      return { id: im.id, key: im.key };
    }),
  };
  const out =
    mode === "pipeline"
      ? await extractShard(store, encoder, list, { batchSize: 8, maxPixels: 50_000_000 })
      : mode === "decode"
        ? await decodeOnly(list)
        : await encodeOnly(encoder, decoded, list, done);
  if (out.vectors.length !== out.ids.length * encoder.dim) throw new Error("vector count mismatch");
  if (out.ids.length + out.failures.length !== n) throw new Error("an image neither encoded nor failed");
  counts.encoded += out.ids.length;
  counts.refused += out.failures.length;
  for (const id of out.ids) if (byId.get(id)?.bad) counts.badEncoded++;
  for (const f of out.failures) {
    if (f.reason === "non_finite") counts.nonFinite++;
    if (!byId.get(f.id)?.bad) counts.goodRefused++;
  }
  done += n;
  if (done % every === 0 || done === total) emit({ soak: "sample", ...takeSample(done, tf) });
}
await encoder.dispose();
emit({ soak: "done", counts });
