// The two soaks of docs/reliability.md test 14, run by test/chaos/memory-soak.chaos.test.ts at its full
// size (thousands of iterations) and its CI size (a few hundred).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Job, QueueEvents } from "bullmq";
import {
  LocalStore,
  createQueue,
  createRedis,
  readDatasetInfo,
  keys,
  type CaptionResult,
  type JobInput,
  type QueueName,
  createQueueEvents,
  readModelPointer,
} from "@capflow/common";
import { publishModel } from "@capflow/ml";
import { freshPrefix, producer, redisUrl, tempDir } from "../services.ts";
import { preparePublishedModel } from "../pipeline.ts";
import { putSoakImages, type SoakImage } from "./images.ts";
import type { MemorySample } from "./memory.ts";
import { SoakChild } from "./soak-child.ts";

export interface SoakRun {
  samples: MemorySample[];
  counts: Record<string, number>;
  backend?: string;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  tail: string;
}

/**
 * Feature path: `images` images (a pool of `pool` distinct ones, ~5% refused, cycled) through the
 * feature worker's shard job body in a child, in shards of `shardSize`, a sample every `every`.
 */
export async function runFeatureSoak(opts: {
  images: number;
  every: number;
  pool?: number;
  shardSize?: number;
  /** `decode` / `encode` run one half of the path only (to tell where growth comes from). */
  mode?: "pipeline" | "decode" | "encode";
  /** Extra environment for the child (e.g. LD_PRELOAD of another allocator). */
  env?: Record<string, string>;
}): Promise<SoakRun> {
  const dir = await tempDir("soak-features");
  const store = new LocalStore(path.join(dir, "store"));
  const pool = await putSoakImages(store, opts.pool ?? 400);
  const listFile = path.join(dir, "images.json");
  await writeFile(listFile, JSON.stringify(pool));
  const child = new SoakChild(
    "feature-child.ts",
    [
      store.location,
      listFile,
      String(opts.images),
      String(opts.every),
      String(opts.shardSize ?? 32),
      opts.mode ?? "pipeline",
    ],
    opts.env,
  );
  try {
    const exit = await child.exited;
    return {
      samples: child.samples,
      counts: child.counts ?? {},
      backend: child.backend,
      exit,
      tail: child.tail,
    };
  } finally {
    child.kill();
  }
}

type CaptionJob = JobInput<"captions"> | JobInput<"caption-bulk">;

/**
 * Caption path: the real caption worker process (child) on a model trained and published here,
 * `jobs` caption jobs sent in waves of `wave` (single images, 80% greedy and 10% beam, ~5% of them
 * refused images; 10% bulk shards of 8 stored feature vectors), a sample after each wave. Every
 * `republishEvery` jobs the model is republished (another epoch) and the soak waits until the
 * worker serves it, so hot reload (load new, dispose old) is soaked too.
 */
export async function runCaptionSoak(opts: {
  jobs: number;
  wave: number;
  republishEvery?: number;
  pool?: number;
  /** CAPFLOW_DECODER_RUNTIME of the worker (default: the worker's own default, ONNX Runtime). */
  decoder?: "onnx" | "tfjs";
  /** Called with each sample as it comes (progress for long runs). */
  onSample?: (s: MemorySample) => void;
}): Promise<SoakRun> {
  const dir = await tempDir("soak-captions");
  const store = new LocalStore(path.join(dir, "store"));
  const prepared = await preparePublishedModel(store, { images: 24, epochs: 2 });
  const encoderId = prepared.encoder.id;
  const shards = (await readDatasetInfo(store, prepared.dataset)).shards;
  const pool: SoakImage[] = await putSoakImages(store, opts.pool ?? 120);
  let epoch = (await readModelPointer(store, "default")).epoch;

  const prefix = freshPrefix();
  const conn = producer();
  const eventsConn = createRedis(redisUrl(), "worker");
  // Online images on `captions`, bulk shards on `caption-bulk`: one worker process serves both.
  const lanes = Object.fromEntries(
    (["captions", "caption-bulk"] as const).map((name) => {
      const queue = createQueue(name, { connection: conn, prefix });
      // Job.waitUntilFinished adds a "closing" listener to the queue per job waited on.
      queue.setMaxListeners(opts.wave + 20);
      // createQueueEvents gives each its own blocking copy of eventsConn and ends it on close().
      return [name, { queue, events: createQueueEvents(name, { connection: eventsConn, prefix }) }];
    }),
  ) as Record<"captions" | "caption-bulk", { queue: ReturnType<typeof createQueue>; events: QueueEvents }>;
  const child = new SoakChild("caption-child.ts", [], {
    CAPFLOW_REDIS_URL: redisUrl(),
    CAPFLOW_QUEUE_PREFIX: prefix,
    CAPFLOW_STORE: "local",
    CAPFLOW_STORE_DIR: store.location,
    CAPFLOW_HOME: path.join(dir, "home"),
    CAPFLOW_TF_BACKEND: "wasm",
    CAPFLOW_LOG_LEVEL: "error",
    CAPFLOW_MODEL_POLL_SECONDS: "1",
    CAPFLOW_CAPTION_MODELS: "default",
    ...(opts.decoder ? { CAPFLOW_DECODER_RUNTIME: opts.decoder } : {}),
  });
  const counts = {
    jobs: 0,
    imageOk: 0,
    imageRefused: 0,
    bulkOk: 0,
    encodes: 0,
    decodes: 0,
    goodFailed: 0,
    reloads: 0,
  };
  const failures: string[] = [];
  let nextImage = 0;

  const jobFor = (j: number): { queue: QueueName; name: string; data: CaptionJob; image?: SoakImage } => {
    if (j % 10 === 9) {
      const shardId = shards[Math.floor(j / 10) % shards.length]!;
      return {
        queue: "caption-bulk",
        name: "bulk",
        data: {
          kind: "bulk-shard",
          batchId: "soak",
          dataset: prepared.dataset,
          shardId,
          shardKey: keys.shardList(prepared.dataset, shardId),
        },
      };
    }
    const image = pool[nextImage++ % pool.length]!;
    const decode = j % 10 === 4 ? { method: "beam" as const, beamWidth: 3 } : { method: "greedy" as const };
    return {
      queue: "captions",
      name: "caption",
      image,
      data: { kind: "image", requestId: `soak-${j}`, imageKey: image.key, decode },
    };
  };

  const runJobs = async (from: number, n: number): Promise<CaptionResult[]> => {
    const specs = Array.from({ length: n }, (_, k) => jobFor(from + k));
    // Settled as soon as attached: a job may fail while later ones are still being added.
    const waits: Array<Promise<PromiseSettledResult<unknown>>> = [];
    for (const s of specs) {
      const lane = lanes[s.queue as "captions" | "caption-bulk"];
      const job: Job = await lane.queue.add(s.name, s.data);
      waits.push(
        job.waitUntilFinished(lane.events).then(
          (value: unknown) => ({ status: "fulfilled" as const, value }),
          (reason: unknown) => ({ status: "rejected" as const, reason }),
        ),
      );
    }
    const settled = await Promise.all(waits);
    const results: CaptionResult[] = [];
    settled.forEach((r, k) => {
      const spec = specs[k]!;
      counts.jobs++;
      if (r.status === "rejected") {
        const msg = (r.reason as Error).message;
        if (spec.image?.bad && /^(empty|format|decode|too_large|timeout|invalid):/.test(msg))
          counts.imageRefused++;
        else {
          counts.goodFailed++;
          if (failures.length < 5) failures.push(`${spec.data.kind} ${spec.image?.key ?? ""}: ${msg}`);
        }
      } else if (spec.data.kind === "image") {
        const out = r.value as CaptionResult;
        if (typeof out.caption !== "string" || !Number.isFinite(out.logProb)) {
          counts.goodFailed++;
          if (failures.length < 5) failures.push(`invalid caption ${JSON.stringify(out)}`);
        }
        counts.imageOk++;
        counts.encodes++;
        counts.decodes++;
        results.push(out);
      } else {
        const out = r.value as { captioned: number };
        counts.bulkOk++;
        counts.decodes += out.captioned;
      }
    });
    return results;
  };

  try {
    await child.ready;
    if (!child.alive) throw new Error(`caption worker did not start\n${child.tail}`);
    await child.sample(0);
    let done = 0;
    let nextRepublish = opts.republishEvery ?? Infinity;
    while (done < opts.jobs) {
      if (done >= nextRepublish) {
        nextRepublish += opts.republishEvery!;
        // Another epoch of the same run; wait (one image job at a time) until the worker serves it,
        // so that no sample is taken while a reload is half done.
        epoch = epoch === 1 ? 2 : 1;
        await publishModel(store, "default", { runId: prepared.result.runId, epoch, encoderId, cider: 0 });
        counts.reloads++;
        for (let tries = 0; ; tries++) {
          const [out] = await runJobs(done, 1);
          done++;
          if (out?.modelVersion.endsWith(`/epoch-${epoch}`)) break;
          if (tries > 100) throw new Error(`worker did not load epoch ${epoch}\n${child.tail}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const n = Math.min(opts.wave, opts.jobs - done);
      await runJobs(done, n);
      done += n;
      const sample = await child.sample(done);
      opts.onSample?.(sample);
    }
    const exit = await child.stop();
    return {
      samples: child.samples,
      counts: { ...counts, failuresShown: failures.length },
      backend: child.backend,
      exit,
      tail: failures.length ? `${failures.join("\n")}\n${child.tail}` : child.tail,
    };
  } finally {
    child.kill();
    for (const { queue, events } of Object.values(lanes)) {
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
    conn.disconnect();
    eventsConn.disconnect();
  }
}
