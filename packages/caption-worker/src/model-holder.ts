import {
  metrics,
  NotFoundError,
  readModelPointer,
  type Logger,
  type ModelPointer,
  type ObjectStore,
} from "@capflow/common";
import {
  loadPublishedModel,
  loadServingDecoder,
  structuredLogger,
  type CaptionDecoder,
  type LoadedCaptionModel,
  type ServingDecoderOptions,
  type Tf,
} from "@capflow/ml";

const reloads = metrics.counter("capflow_caption_model_reloads_total", "Model (re)loads, by outcome", [
  "status",
]);
const modelEpoch = metrics.gauge("capflow_caption_model_epoch", "Epoch of the serving model's run", [
  "model",
]);
const modelLoadedAt = metrics.gauge(
  "capflow_caption_model_loaded_timestamp_seconds",
  "When the serving model was loaded",
  ["model"],
);

export class NoModelError extends Error {
  override name = "NoModelError";
}

/** A loaded model with the decoder built from its weights; both are disposed when it is retired. */
export interface ServingModel extends LoadedCaptionModel {
  decoder: CaptionDecoder;
}

/** How a loaded model's captions are decoded (CAPFLOW_DECODER_*). */
/** Where captions are decoded (runtime, threads, execution providers): ml's serving-decoder.ts. */
export type DecoderSettings = Omit<ServingDecoderOptions, "logger">;

interface Slot {
  loaded: ServingModel;
  inFlight: number;
  retired: boolean;
}

export interface Lease {
  readonly loaded: ServingModel;
  release(): void;
}

/**
 * Holds the published model for one name and swaps in a newly published one without dropping
 * requests: a request leases the model it started on; a retired model is disposed when its last
 * lease is released. A model trained on another encoder, or a tampered/oversized checkpoint, is
 * refused and the old one keeps serving.
 */
export class ModelHolder {
  private slot?: Slot;
  private pointerKey = "";
  private loading?: Promise<void>;

  constructor(
    private readonly deps: {
      store: ObjectStore;
      tf: Tf;
      log: Logger;
      encoderId: string;
      maxModelBytes?: number;
      decoder?: DecoderSettings;
    },
    readonly name: string,
  ) {}

  async acquire(): Promise<Lease> {
    if (!this.slot) await this.refresh();
    const slot = this.slot;
    if (!slot)
      throw new NoModelError(
        `no model is published as "${this.name}" (train one with capflow train --publish-as ${this.name})`,
      );
    slot.inFlight++;
    let released = false;
    return {
      loaded: slot.loaded,
      release: () => {
        if (released) return;
        released = true;
        slot.inFlight--;
        this.disposeIfIdle(slot);
      },
    };
  }

  /** Checks the pointer; loads and swaps in a new model if it changed. Never throws. */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  get version(): string | undefined {
    return this.slot?.loaded.version;
  }

  private async load(): Promise<void> {
    let pointer: ModelPointer;
    try {
      pointer = await readModelPointer(this.deps.store, this.name);
    } catch (err) {
      if (!(err instanceof NotFoundError))
        this.deps.log.warn({ err: (err as Error).message, model: this.name }, "cannot read model pointer");
      return;
    }
    const key = `${pointer.runId}/${pointer.epoch}/${pointer.publishedAt}`;
    if (key === this.pointerKey) return;
    if (pointer.encoderId !== this.deps.encoderId) {
      reloads.inc({ status: "refused" });
      this.pointerKey = key;
      this.deps.log.error(
        { model: this.name, modelEncoder: pointer.encoderId, workerEncoder: this.deps.encoderId },
        "refusing a model trained on features of another encoder",
      );
      return;
    }
    try {
      const published = await loadPublishedModel(this.deps.store, this.deps.tf, pointer, {
        maxBytes: this.deps.maxModelBytes,
      });
      const loaded: ServingModel = { ...published, decoder: await this.buildDecoder(published) };
      const old = this.slot;
      this.slot = { loaded, inFlight: 0, retired: false };
      this.pointerKey = key;
      if (old) {
        old.retired = true;
        this.disposeIfIdle(old);
      }
      reloads.inc({ status: "loaded" });
      modelEpoch.set({ model: this.name }, pointer.epoch);
      modelLoadedAt.set({ model: this.name }, Date.now() / 1000);
      this.deps.log.info(
        { model: this.name, version: loaded.version, decoder: loaded.decoder.backend },
        "model loaded",
      );
    } catch (err) {
      reloads.inc({ status: "failed" });
      this.pointerKey = key;
      this.deps.log.error(
        { model: this.name, err: (err as Error).message },
        "model refused; the previous one keeps serving",
      );
    }
  }

  /**
   * The ONNX decoder of a loaded model (unless runtime=tfjs); where it cannot be built or disagrees with
   * the tfjs model, captions are decoded by the tfjs model itself, with a warning naming the reason.
   */
  private async buildDecoder(loaded: LoadedCaptionModel): Promise<CaptionDecoder> {
    const log = this.deps.log.child({ model: this.name, version: loaded.version });
    return loadServingDecoder(loaded.model, {
      ...this.deps.decoder,
      logger: structuredLogger(log),
    });
  }

  private disposeIfIdle(slot: Slot): void {
    if (!slot.retired || slot.inFlight > 0) return;
    slot.loaded.model.dispose();
    slot.loaded.decoder
      .dispose()
      .catch((err: unknown) =>
        this.deps.log.warn(
          { model: this.name, version: slot.loaded.version, err: (err as Error).message },
          "caption decoder did not release cleanly",
        ),
      );
  }

  dispose(): void {
    if (this.slot) {
      this.slot.retired = true;
      this.disposeIfIdle(this.slot);
    }
  }
}
