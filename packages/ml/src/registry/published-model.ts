import { createHash } from "node:crypto";
import type { Tf } from "../compute/backend.ts";
import { createCaptionModel, type CaptionModel } from "../model/caption-model.ts";
import { decodeWeights, type WeightSpec } from "../model/weights-io.ts";
import { getJson, keys, putJson, type ModelPointer, type ObjectStore } from "@capflow/common";
import { loadCaptionIndex, type CaptionIndex } from "../model/caption-index.ts";
import { featureTransformFromJSON, type FeatureTransform } from "../model/feature-transform.ts";
import { vocabularyFromJSON, type Vocabulary } from "../text/vocabulary.ts";

export async function publishModel(
  store: ObjectStore,
  name: string,
  m: { runId: string; epoch: number; encoderId: string; cider: number; index?: string },
): Promise<ModelPointer> {
  const pointer: ModelPointer = {
    name,
    ...m,
    checkpoint: keys.runEpoch(m.runId, m.epoch),
    publishedAt: new Date().toISOString(),
  };
  await putJson(store, keys.modelPointer(name), pointer);
  return pointer;
}

export interface LoadedCaptionModel {
  pointer: ModelPointer;
  model: CaptionModel;
  vocab: Vocabulary;
  /** Applied to encoder features before the model, the index and the confidence see them. */
  transform: FeatureTransform;
  /** Retrieval re-ranking and confidence; absent for models published without one. */
  index?: CaptionIndex;
  /** Identifies what serves a caption: `<name>@<run>/epoch-<n>`. */
  version: string;
}

export class ModelRejectedError extends Error {
  override name = "ModelRejectedError";
}

/**
 * Loads a published model for inference. Refuses (and leaves the caller serving its old model) a
 * checkpoint whose files do not match their commit marker, or one bigger than `maxBytes`.
 */
export async function loadPublishedModel(
  store: ObjectStore,
  tf: Tf,
  pointer: ModelPointer,
  opts: { maxBytes?: number } = {},
): Promise<LoadedCaptionModel> {
  const dir = pointer.checkpoint;
  if (!dir.startsWith("runs/"))
    throw new ModelRejectedError(`model ${pointer.name}: checkpoint ${dir} is outside runs/`);
  const commit = await getJson<{ files: Record<string, string> }>(store, `${dir}COMMIT.json`);
  const maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  const read = async (name: string) => {
    const head = await store.head(dir + name);
    if (!head) throw new ModelRejectedError(`model ${pointer.name}: ${dir}${name} is missing`);
    if (head.size > maxBytes)
      throw new ModelRejectedError(
        `model ${pointer.name}: ${name} is ${head.size} bytes, over the ${maxBytes} limit`,
      );
    const body = await store.get(dir + name);
    if (createHash("sha256").update(body).digest("hex") !== commit.files[name]) {
      throw new ModelRejectedError(
        `model ${pointer.name}: ${dir}${name} does not match its commit marker (tampered or torn)`,
      );
    }
    return body;
  };
  const config = JSON.parse((await read("config.json")).toString()) as {
    model: Record<string, unknown>;
    featureTransform?: unknown;
  };
  let transform: FeatureTransform;
  try {
    transform = featureTransformFromJSON(config.featureTransform);
  } catch (err) {
    throw new ModelRejectedError(`model ${pointer.name}: ${(err as Error).message}`);
  }
  let index: CaptionIndex | undefined;
  if (pointer.index) {
    if (!pointer.index.startsWith("runs/"))
      throw new ModelRejectedError(`model ${pointer.name}: index ${pointer.index} is outside runs/`);
    try {
      index = (await loadCaptionIndex(store, pointer.index)).index;
    } catch (err) {
      throw new ModelRejectedError(`model ${pointer.name}: ${(err as Error).message}`);
    }
  }
  const vocab = vocabularyFromJSON(JSON.parse((await read("vocab.json")).toString()));
  const specs = JSON.parse((await read("weights.json")).toString()) as WeightSpec[];
  const weights = decodeWeights(specs, await read("weights.bin"));
  const { pretrainedEmbeddings: _drop, ...modelConfig } = config.model;
  const model = createCaptionModel(tf, { ...modelConfig, vocabSize: vocab.size } as Parameters<
    typeof createCaptionModel
  >[1]);
  try {
    model.setWeights(weights);
  } catch (err) {
    model.dispose();
    throw new ModelRejectedError(
      `model ${pointer.name}: weights do not fit the config: ${(err as Error).message}`,
    );
  }
  return {
    pointer,
    model,
    vocab,
    transform,
    index,
    version: `${pointer.name}@${pointer.runId}/epoch-${pointer.epoch}`,
  };
}
