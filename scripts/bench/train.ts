/**
 * One epoch of teacher forcing vs the tutorial's prefix method, on synthetic but realistically sized
 * data: random 2048-d features, ~2000 captions of 8–15 words over a ~1000-word vocabulary, maxLength 20.
 *
 *   pnpm exec tsx scripts/bench/train.ts [--captions 2000] [--prefix-batches 40] [--epochs 1]
 *
 * The prefix method is timed on its first `--prefix-batches` batches and extrapolated per sample to the
 * full epoch (it is ~10× slower; the output says so). Validation loss is measured on held-out captions
 * after the same number of (full) epochs with each method.
 */
import { parseArgs } from "node:util";
import { createCaptionModel, loadTf, prefixSamples, type CaptionSet } from "@capflow/ml";
import { evaluateLoss, rng, trainEpoch } from "@capflow/trainer";

const { values } = parseArgs({
  options: {
    captions: { type: "string", default: "2000" },
    "val-captions": { type: "string", default: "200" },
    "prefix-batches": { type: "string", default: "40" },
    epochs: { type: "string", default: "1" },
    "batch-teacher": { type: "string", default: "64" },
    "batch-prefix": { type: "string", default: "64" },
  },
});
const nCaptions = Number(values.captions);
const nVal = Number(values["val-captions"]);
const epochs = Number(values.epochs);
const V = 1000;
const maxLength = 20;
const F = 2048;

/** Captions with a learnable signal: each image has a topic that biases its words. */
function synthetic(captions: number, seed: number): CaptionSet {
  const rand = rng(seed);
  const images = Math.ceil(captions / 5);
  const features = new Float32Array(images * F);
  const topic = new Int32Array(images);
  for (let i = 0; i < images; i++) {
    topic[i] = Math.floor(rand() * 50);
    for (let j = 0; j < F; j++)
      features[i * F + j] = Math.max(0, rand() * 2 - 1 + (j % 50 === topic[i] ? 3 : 0));
  }
  const tokens = new Int32Array(captions * maxLength);
  const imageOf = new Int32Array(captions);
  for (let c = 0; c < captions; c++) {
    const img = c % images;
    imageOf[c] = img;
    const len = 8 + Math.floor(rand() * 8); // 8–15 words
    tokens[c * maxLength] = 1;
    for (let k = 1; k <= len; k++) {
      const word = rand() < 0.5 ? 4 + ((topic[img]! * 19 + k) % (V - 4)) : 4 + Math.floor(rand() * (V - 4));
      tokens[c * maxLength + k] = word;
    }
    tokens[c * maxLength + len + 1] = 2;
  }
  return { features, featureDim: F, tokens, width: maxLength, imageOf };
}

const loaded = await loadTf();
const { tf } = loaded;
console.log(`backend: ${loaded.kind} (threads ${loaded.threads ?? "n/a"}), tfjs ${tf.version.tfjs}`);
const all = synthetic(nCaptions + nVal, 11);
const trainIdx = [...Array(nCaptions).keys()];
// Held-out captions: the last nVal, on images of their own.
const val: CaptionSet = {
  ...all,
  tokens: all.tokens.slice(nCaptions * maxLength),
  imageOf: all.imageOf.slice(nCaptions),
};
const config = { vocabSize: V, maxLength, seed: 1 };
const samples = prefixSamples(all, trainIdx).length;
console.log(
  `data: ${nCaptions} train captions (${samples} prefix samples), ${nVal} validation captions, vocab ${V}, maxLength ${maxLength}`,
);

// Teacher forcing: full epochs.
const tfModel = createCaptionModel(tf, config);
let teacherSeconds = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  const t0 = performance.now();
  const r = await trainEpoch(tfModel, all, {
    method: "teacher",
    batchSize: Number(values["batch-teacher"]),
    seed: 1,
    epoch,
    captions: trainIdx,
  });
  const s = (performance.now() - t0) / 1000;
  teacherSeconds += s;
  console.log(`  teacher-forcing epoch ${epoch}: ${s.toFixed(1)} s, train loss ${r.loss.toFixed(3)}`);
}
const teacherVal = evaluateLoss(tfModel, val);
tfModel.dispose();
const tSec = teacherSeconds / epochs;

// Prefix: a slice of the first epoch, extrapolated per sample.
const pModel = createCaptionModel(tf, config);
const batchPrefix = Number(values["batch-prefix"]);
const maxBatches = Number(values["prefix-batches"]);
const t0 = performance.now();
const part = await trainEpoch(pModel, all, {
  method: "prefix",
  batchSize: batchPrefix,
  seed: 1,
  epoch: 0,
  captions: trainIdx,
  maxBatches,
});
const partSec = (performance.now() - t0) / 1000;
const pSec = (partSec * samples) / part.tokens;
console.log(
  `  prefix: ${part.batches} batches (${part.tokens} of ${samples} samples) in ${partSec.toFixed(1)} s, extrapolated per sample to the epoch`,
);
let prefixVal: number | undefined;
if (maxBatches >= Math.ceil(samples / batchPrefix)) {
  for (let epoch = 1; epoch < epochs; epoch++)
    await trainEpoch(pModel, all, {
      method: "prefix",
      batchSize: batchPrefix,
      seed: 1,
      epoch,
      captions: trainIdx,
    });
  prefixVal = evaluateLoss(pModel, val);
}
pModel.dispose();

console.log(`teacher-forcing: ${tSec.toFixed(1)} s/epoch (${(nCaptions / tSec).toFixed(1)} captions/s)`);
console.log(
  `prefix: ${pSec.toFixed(1)} s/epoch (${(nCaptions / pSec).toFixed(1)} captions/s) ${part.tokens < samples ? `[measured on ${part.tokens}/${samples} samples, extrapolated per sample]` : "[full epoch measured]"}`,
);
console.log(`speed-up: ${(pSec / tSec).toFixed(1)}x`);
console.log(
  `validation loss after ${epochs} epoch(s): teacher-forcing ${teacherVal.toFixed(3)}, prefix ${prefixVal === undefined ? "not measured (pass --prefix-batches large enough for full epochs)" : prefixVal.toFixed(3)}`,
);
