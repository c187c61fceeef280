import { UnrecoverableError } from "bullmq";
import { metrics, type DecodeChoiceInput, type Logger, type ObjectStore } from "@capflow/common";
import { captionRows, PIXELS_PER_IMAGE, type Encoder, type RowCaption, type Tf } from "@capflow/ml";
import { MicroBatcher } from "./micro-batcher.ts";
import { ModelHolder, type DecoderSettings, type ServingModel } from "./model-holder.ts";

const batchSize = metrics.histogram(
  "capflow_caption_batch_size",
  "Captions decoded together",
  ["stage"],
  [1, 2, 4, 8, 16, 32, 64, 128],
);

export interface CaptionerOptions {
  store: ObjectStore;
  tf: Tf;
  log: Logger;
  encoder: Encoder;
  /** Largest decode batch, and how long the first request of a batch waits for company. */
  maxBatch: number;
  maxWaitMs: number;
  maxModelBytes?: number;
  /** Where captions are decoded; default ONNX Runtime on cpu with one thread per core. */
  decoder?: DecoderSettings;
  /**
   * The model names this worker serves (CAPFLOW_CAPTION_MODELS); default ["default"]. A job naming
   * another fails at once and creates nothing: every holder is polled for its pointer forever, and
   * a holder per client-chosen name grew without bound (names.ts).
   */
  models?: readonly string[];
}

/**
 * Everything a caption needs: the encoder (micro-batched), the published models by name (hot
 * reloaded), and a greedy-decode micro-batcher per loaded model, so requests decode together but
 * never across model versions.
 */
export class Captioner {
  private readonly holders = new Map<string, ModelHolder>();
  private readonly decoders = new WeakMap<
    ServingModel,
    MicroBatcher<Float32Array, { tokens: number[]; logProb: number }>
  >();
  readonly encodeBatcher: MicroBatcher<Float32Array, Float32Array>;

  constructor(private readonly opts: CaptionerOptions) {
    const { encoder } = opts;
    this.encodeBatcher = new MicroBatcher<Float32Array, Float32Array>({
      maxBatch: 8,
      maxWaitMs: opts.maxWaitMs,
      onBatch: (n) => batchSize.observe({ stage: "encode" }, n),
      run: async (images) => {
        const batch = new Float32Array(images.length * PIXELS_PER_IMAGE);
        images.forEach((img, i) => batch.set(img, i * PIXELS_PER_IMAGE));
        const out = await encoder.encode(batch, images.length);
        return images.map((_, i) => out.slice(i * encoder.dim, (i + 1) * encoder.dim));
      },
    });
  }

  holder(name: string): ModelHolder {
    let h = this.holders.get(name);
    if (!h) {
      const served = this.opts.models ?? ["default"];
      if (!served.includes(name))
        throw new UnrecoverableError(`model "${name}" is not served here (served: ${served.join(", ")})`);
      h = new ModelHolder({ ...this.opts, encoderId: this.opts.encoder.id }, name);
      this.holders.set(name, h);
    }
    return h;
  }

  /** How many models are held (bounded by the served set). */
  get holderCount(): number {
    return this.holders.size;
  }

  async refreshAll(): Promise<void> {
    await Promise.all([...this.holders.values()].map((h) => h.refresh()));
  }

  /**
   * Captions of `n` rows of raw encoder features with one leased model, through caption-rows.ts (the
   * model's feature transform, the decoding, the confidence): greedy goes through the micro-batcher.
   */
  async decode(
    loaded: ServingModel,
    features: Float32Array,
    n: number,
    req: DecodeChoiceInput,
  ): Promise<RowCaption[]> {
    const batcher = this.decoderFor(loaded);
    return captionRows(
      {
        decoder: loaded.decoder,
        vocab: loaded.vocab,
        transform: loaded.transform,
        index: loaded.index,
        greedy: (x, m) => {
          const dim = x.length / m;
          return Promise.all(
            Array.from({ length: m }, (_, i) => batcher.submit(x.subarray(i * dim, (i + 1) * dim))),
          );
        },
      },
      features,
      n,
      req,
    );
  }

  private decoderFor(loaded: ServingModel) {
    let b = this.decoders.get(loaded);
    if (!b) {
      const dim = this.opts.encoder.dim;
      b = new MicroBatcher({
        maxBatch: this.opts.maxBatch,
        maxWaitMs: this.opts.maxWaitMs,
        onBatch: (n) => batchSize.observe({ stage: "decode" }, n),
        run: async (rows) => {
          const batch = new Float32Array(rows.length * dim);
          rows.forEach((r, i) => batch.set(r, i * dim));
          const { tokens, logProbs } = await loaded.decoder.greedyDecode(batch, rows.length);
          return tokens.map((t, i) => ({ tokens: t, logProb: logProbs[i]! }));
        },
      });
      this.decoders.set(loaded, b);
    }
    return b;
  }

  dispose(): void {
    for (const h of this.holders.values()) h.dispose();
  }
}
