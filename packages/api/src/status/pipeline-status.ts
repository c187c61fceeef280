import {
  getJson,
  keys,
  QUEUE_NAMES,
  readDatasetInfo,
  type DatasetInfo,
  type ModelPointer,
  type ObjectStore,
  type QueueName,
  type RedisClient,
  type TypedQueue,
} from "@capflow/common";
import { captionBatchStatus, type CaptionJobStatus } from "../caption-jobs.ts";
import { featureProgress, type FeatureProgress } from "./feature-status.ts";

/**
 * Where everything stands, read from the store (the source of truth) and the queues: what
 * `capflow status` prints and the web page's overview shows. Read-only, except that a finished bulk
 * job's results are assembled on first look (idempotent, as GET /v1/caption-jobs/:id does).
 */
export interface DatasetStatus {
  name: string;
  format: string;
  images: number;
  captions: number;
  splits: DatasetInfo["splits"];
  /** Per encoder that has (or should have) features: the current one and every published model's. */
  features: Array<FeatureProgress & { current: boolean }>;
}

export interface RunStatus {
  runId: string;
  dataset?: string;
  epoch: number;
  epochs?: number;
  finished: boolean;
  scores?: { trainLoss: number; valLoss: number; bleu4: number; cider: number };
  bestCider?: number;
  /** Store key of the HTML report, when `capflow report` (or the trainer) wrote one. */
  report?: string;
  publishedAs: string[];
}

export interface PipelineStatus {
  encoder?: string;
  workers: Record<QueueName, number>;
  datasets: DatasetStatus[];
  runs: RunStatus[];
  models: ModelPointer[];
  batches: CaptionJobStatus[];
}

export interface StatusDeps {
  store: ObjectStore;
  /** Bulk progress counters live in Redis (one hash per batch). */
  redis: RedisClient;
  queues: { [Q in QueueName]: TypedQueue<Q> };
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of store.list(prefix)) out.push(key);
  return out;
}

export async function currentEncoder(store: ObjectStore): Promise<string | undefined> {
  return getJson<{ id: string }>(store, "encoders/current.json").then(
    (e) => e.id,
    () => undefined,
  );
}

export async function listDatasets(store: ObjectStore): Promise<string[]> {
  const names = new Set<string>();
  for (const key of await keysUnder(store, "datasets/")) {
    const m = /^datasets\/([^/]+)\/dataset\.json$/.exec(key);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

export async function listModels(store: ObjectStore): Promise<ModelPointer[]> {
  const out: ModelPointer[] = [];
  for (const key of await keysUnder(store, "models/")) {
    if (key.endsWith("/latest")) out.push(await getJson<ModelPointer>(store, key));
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function datasetStatus(
  deps: StatusDeps,
  name: string,
  encoders: { current?: string; published: string[] },
): Promise<DatasetStatus> {
  const info = await readDatasetInfo(deps.store, name);
  const ids = [...new Set([encoders.current, ...encoders.published].filter((e): e is string => !!e))];
  const features = await Promise.all(
    ids.map(async (id) => ({
      ...(await featureProgress(deps.store, deps.queues.features, info, id)),
      current: id === encoders.current,
    })),
  );
  return {
    name,
    format: info.format,
    images: info.images,
    captions: info.captions,
    splits: info.splits,
    features,
  };
}

export async function listRuns(store: ObjectStore, models: ModelPointer[]): Promise<RunStatus[]> {
  const byRun = new Map<string, { epochs: number[]; result: boolean; report: boolean }>();
  for (const key of await keysUnder(store, "runs/")) {
    const m = /^runs\/([^/]+)\/(.*)$/.exec(key);
    if (!m) continue;
    const run = byRun.get(m[1]!) ?? { epochs: [], result: false, report: false };
    byRun.set(m[1]!, run);
    const epoch = /^epoch-(\d+)\/COMMIT\.json$/.exec(m[2]!);
    if (epoch) run.epochs.push(Number(epoch[1]));
    if (m[2] === "result.json") run.result = true;
    if (m[2] === "report.html") run.report = true;
  }
  const runs = await Promise.all(
    [...byRun].map(async ([runId, r]): Promise<RunStatus> => {
      const epoch = Math.max(0, ...r.epochs);
      const status: RunStatus = {
        runId,
        epoch,
        finished: r.result,
        publishedAs: models.filter((m) => m.runId === runId).map((m) => m.name),
        ...(r.report ? { report: `${keys.runPrefix(runId)}report.html` } : {}),
      };
      if (epoch > 0) {
        const dir = keys.runEpoch(runId, epoch);
        const history = await getJson<Array<Record<string, number>>>(store, `${dir}metrics.json`).catch(
          () => [],
        );
        const config = await getJson<{ spec?: { dataset?: string; epochs?: number } }>(
          store,
          `${dir}config.json`,
        ).catch(() => ({}) as { spec?: { dataset?: string; epochs?: number } });
        const last = history.at(-1);
        if (last)
          status.scores = {
            trainLoss: last.trainLoss!,
            valLoss: last.valLoss!,
            bleu4: last.bleu4!,
            cider: last.cider!,
          };
        if (history.length) status.bestCider = Math.max(...history.map((h) => h.cider ?? -Infinity));
        status.dataset = config.spec?.dataset;
        status.epochs = config.spec?.epochs;
      }
      return status;
    }),
  );
  return runs.sort((a, b) => a.runId.localeCompare(b.runId));
}

export async function listBatches(deps: StatusDeps, limit = 20): Promise<CaptionJobStatus[]> {
  const found: Array<{ id: string; createdAt: string }> = [];
  for (const key of await keysUnder(deps.store, "captions/")) {
    const m = /^captions\/(b[0-9a-z]+)\/batch\.json$/.exec(key);
    if (!m) continue;
    const batch = await getJson<{ createdAt: string }>(deps.store, key);
    found.push({ id: m[1]!, createdAt: batch.createdAt });
  }
  found.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const bulk = { store: deps.store, queue: deps.queues["caption-bulk"], redis: deps.redis };
  return Promise.all(found.slice(0, limit).map((b) => captionBatchStatus(bulk, b.id)));
}

/** Everything, or one dataset (then only the runs and batches that use it). */
export async function pipelineStatus(deps: StatusDeps, dataset?: string): Promise<PipelineStatus> {
  const [encoder, models] = await Promise.all([currentEncoder(deps.store), listModels(deps.store)]);
  const names = dataset ? [dataset] : await listDatasets(deps.store);
  const encoders = { current: encoder, published: models.map((m) => m.encoderId) };
  const datasets = await Promise.all(names.map((n) => datasetStatus(deps, n, encoders)));
  const runs = (await listRuns(deps.store, models)).filter((r) => !dataset || r.dataset === dataset);
  const batches = (await listBatches(deps)).filter((b) => !dataset || b.dataset === dataset);
  const workers = Object.fromEntries(
    await Promise.all(QUEUE_NAMES.map(async (q) => [q, await deps.queues[q].getWorkersCount()] as const)),
  ) as Record<QueueName, number>;
  return {
    ...(encoder ? { encoder } : {}),
    workers,
    datasets,
    runs,
    models: dataset ? models.filter((m) => runs.some((r) => r.runId === m.runId)) : models,
    batches,
  };
}
