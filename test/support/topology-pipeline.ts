import { createHash } from "node:crypto";
import path from "node:path";
import type { Job, Worker } from "bullmq";
import {
  CommonEnv,
  createQueue,
  createQueueEvents,
  keys,
  readDatasetInfo,
  startRuntime,
  type CaptionResult,
  type Runtime,
} from "@capflow/common";
import { loadTf } from "@capflow/ml";
import { ingestDataset, type ReconcileSummary } from "@capflow/ingest";
import { announceEncoder, createFeatureWorker } from "@capflow/feature-worker";
import { createTrainerWorker } from "@capflow/trainer";
import { Captioner, createCaptionWorkers } from "@capflow/caption-worker";
import { drawImage, writeJsonlDataset } from "./images.ts";
import { sharedEncoder } from "./pipeline.ts";
import { tempDir } from "./services.ts";
import { checkLedger, type Ledger } from "./fault/ledger.ts";
import { sleep } from "./redis-topologies.ts";

export interface TopologyRun {
  topology: string;
  /** CAPFLOW_HOME of the run; the local store is its `store/`. */
  home: string;
  ledger: Ledger;
  /** Shards the run had to recover with the reconciler (0 where nothing was lost). */
  reconciled: ReconcileSummary[];
  trained: { runId: string; epochs: number };
  caption: string;
  bulkCaptioned: number;
  ms: { ingest: number; features: number; train: number; captions: number };
}

export interface RunHooks {
  /** Called once the first shard has output, while the others are in flight (inject a fault here). */
  midFeatures?: (rt: Runtime) => Promise<void>;
  /**
   * Called when no shard has finished for `stuckMs`: recover what was lost (e.g. run
   * `capflow reconcile`). Without it a stuck run fails.
   */
  recover?: (rt: Runtime) => Promise<ReconcileSummary>;
  stuckMs?: number;
}

/**
 * ingest → features → train (tiny) → captions through BullMQ on the given Redis topology, with the
 * real encoder, a real tiny training run and real caption decoding, all connections made by the
 * runtime from `env` (the connection factory and start-up checks under test). Ends with the
 * conservation ledger of the dataset.
 */
export async function runPipelineOn(
  topology: string,
  env: Record<string, string>,
  hooks: RunHooks = {},
  opts: { images?: number } = {},
): Promise<TopologyRun> {
  const home = await tempDir(`topo-${topology}`);
  const rt = await startRuntime(`topology-${topology}`, CommonEnv, {
    source: { CAPFLOW_HOME: home, CAPFLOW_STORE: "local", CAPFLOW_LOG_LEVEL: "warn", ...env },
    signals: false,
  });
  const workers: Worker[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  const queues = {
    features: createQueue("features", { connection: rt.redis, prefix: rt.prefix }),
    training: createQueue("training", { connection: rt.redis, prefix: rt.prefix }),
    captions: createQueue("captions", { connection: rt.redis, prefix: rt.prefix }),
    bulk: createQueue("caption-bulk", { connection: rt.redis, prefix: rt.prefix }),
  };
  const dataset = "drawn";
  try {
    const encoder = await sharedEncoder();
    await announceEncoder(rt.store, encoder);
    const truncated = (await drawImage(4242)).subarray(0, 200);
    const dir = await writeJsonlDataset(await tempDir("ds"), opts.images ?? 24, {
      "truncated.png": truncated,
    });

    let t = Date.now();
    await ingestDataset(rt.store, queues.features, {
      dataset,
      format: "jsonl-folder",
      dir,
      shardSize: 5,
      onError: "fail",
    });
    const ms = { ingest: Date.now() - t, features: 0, train: 0, captions: 0 };

    t = Date.now();
    workers.push(
      createFeatureWorker({
        store: rt.store,
        encoder,
        connection: rt.workerConnection(),
        prefix: rt.prefix,
        log: rt.log,
        batchSize: 5,
        concurrency: 1,
        dtype: "float32",
        maxPixels: 50_000_000,
        // A short stalled check so a job whose lock vanished with a failed-over primary is seen soon.
        stalledIntervalMs: 5_000,
      }),
    );
    const reconciled = await waitForShards(rt, dataset, encoder.id, hooks);
    ms.features = Date.now() - t;

    t = Date.now();
    const { tf } = await loadTf();
    workers.push(
      createTrainerWorker({
        store: rt.store,
        tf,
        connection: rt.workerConnection(),
        prefix: rt.prefix,
        log: rt.log,
      }),
    );
    const trainingEvents = createQueueEvents("training", { connection: rt.redis, prefix: rt.prefix });
    closers.push(() => trainingEvents.close());
    await trainingEvents.waitUntilReady();
    const runId = `run-${topology}`;
    const trainJob = await queues.training.add(
      "run",
      {
        runId,
        dataset,
        encoderId: encoder.id,
        method: "teacher-forcing",
        epochs: 1,
        seed: 1,
        batchSize: 16,
        learningRate: 0.01,
        minWordCount: 1,
        model: { embedDim: 16, units: 32, dropout: 0 },
        publishAs: "default",
        beamWidth: 2,
      },
      { jobId: `train.${runId}` },
    );
    const trained = (await trainJob.waitUntilFinished(trainingEvents, 600_000)) as {
      runId: string;
      epochs: number;
    };
    ms.train = Date.now() - t;

    t = Date.now();
    const captioner = new Captioner({
      store: rt.store,
      tf,
      log: rt.log,
      encoder,
      maxBatch: 16,
      maxWaitMs: 5,
    });
    closers.push(async () => captioner.dispose());
    await captioner.holder("default").refresh();
    const { online, bulk } = createCaptionWorkers({
      captioner,
      store: rt.store,
      connect: () => rt.workerConnection(),
      prefix: rt.prefix,
      log: rt.log,
      concurrency: 4,
      bulkConcurrency: 1,
      maxPixels: 50_000_000,
    });
    workers.push(online, bulk);
    const captionEvents = createQueueEvents("captions", { connection: rt.redis, prefix: rt.prefix });
    const bulkEvents = createQueueEvents("caption-bulk", { connection: rt.redis, prefix: rt.prefix });
    closers.push(
      () => captionEvents.close(),
      () => bulkEvents.close(),
    );
    await Promise.all([captionEvents.waitUntilReady(), bulkEvents.waitUntilReady()]);
    const bytes = await drawImage(777);
    const imageKey = keys.image(createHash("sha256").update(bytes).digest("hex"), "png");
    await rt.store.put(imageKey, bytes);
    const one = await queues.captions.add("caption", { kind: "image", requestId: "topology", imageKey });
    const caption = ((await one.waitUntilFinished(captionEvents, 120_000)) as CaptionResult).caption;
    const shardId = (await readDatasetInfo(rt.store, dataset)).shards[0]!;
    const bulkJob: Job = await queues.bulk.add("bulk-shard", {
      kind: "bulk-shard",
      batchId: `b-${topology}`,
      dataset,
      shardId,
      shardKey: keys.shardList(dataset, shardId),
    });
    const { captioned } = (await bulkJob.waitUntilFinished(bulkEvents, 120_000)) as { captioned: number };
    ms.captions = Date.now() - t;

    const ledger = await checkLedger(rt.store, dataset, encoder.id);
    return { topology, home, ledger, reconciled, trained, caption, bulkCaptioned: captioned, ms };
  } finally {
    for (const w of workers) await w.close();
    for (const close of closers.reverse()) await close();
    for (const q of Object.values(queues)) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    await rt.shutdown.run();
  }
}

async function waitForShards(
  rt: Runtime,
  dataset: string,
  encoderId: string,
  hooks: RunHooks,
): Promise<ReconcileSummary[]> {
  const { shards } = await readDatasetInfo(rt.store, dataset);
  const reconciled: ReconcileSummary[] = [];
  const stuckMs = hooks.stuckMs ?? 240_000;
  let done = 0;
  let lastProgress = Date.now();
  let faulted = !hooks.midFeatures;
  for (;;) {
    let now = 0;
    for (const s of shards) if (await rt.store.head(keys.featureIndex(encoderId, dataset, s))) now++;
    if (now > done) lastProgress = Date.now();
    done = now;
    if (done === shards.length) return reconciled;
    if (!faulted && done >= 1) {
      faulted = true;
      await hooks.midFeatures!(rt);
      lastProgress = Date.now();
    }
    if (Date.now() - lastProgress > stuckMs) {
      if (!hooks.recover || reconciled.length >= 3)
        throw new Error(
          `${done}/${shards.length} shards done, none for ${stuckMs} ms (${path.basename(rt.env.CAPFLOW_HOME)})`,
        );
      reconciled.push(await hooks.recover(rt));
      lastProgress = Date.now();
    }
    await sleep(250);
  }
}
