import {
  loadPublishedModel,
  metrics,
  NotFoundError,
  readModelPointer,
  type LoadedCaptionModel,
  type Logger,
  type ModelPointer,
  type ObjectStore,
  type Tf,
} from "@capflow/common";

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

interface Slot {
  loaded: LoadedCaptionModel;
  inFlight: number;
  retired: boolean;
}

export interface Lease {
  readonly loaded: LoadedCaptionModel;
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
      const loaded = await loadPublishedModel(this.deps.store, this.deps.tf, pointer, {
        maxBytes: this.deps.maxModelBytes,
      });
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
      this.deps.log.info({ model: this.name, version: loaded.version }, "model loaded");
    } catch (err) {
      reloads.inc({ status: "failed" });
      this.pointerKey = key;
      this.deps.log.error(
        { model: this.name, err: (err as Error).message },
        "model refused; the previous one keeps serving",
      );
    }
  }

  private disposeIfIdle(slot: Slot): void {
    if (slot.retired && slot.inFlight === 0) slot.loaded.model.dispose();
  }

  dispose(): void {
    if (this.slot) {
      this.slot.retired = true;
      this.disposeIfIdle(this.slot);
    }
  }
}
