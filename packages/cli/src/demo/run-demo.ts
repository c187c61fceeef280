import fs from "node:fs/promises";
import path from "node:path";
import { CommonEnv, createQueue, parseEnv, redactUrl, startRuntime, type JobInput } from "@capflow/common";
import { buildEmojiDataset, ingestDataset } from "@capflow/ingest";
import { loadTf } from "@capflow/ml";
import { evaluateModel, formatInterval, writeReport } from "@capflow/trainer";
import { progress } from "../actions/progress.ts";
import { formatProgress, submitRun } from "../actions/submit-run.ts";
import { printResult } from "../actions/train.ts";
import { Supervisor } from "../supervisor.ts";
import { ingestCheckSets } from "./check-sets.ts";
import { waitForEncoder, waitForFeatures } from "./wait-for-features.ts";

export interface DemoOptions {
  size: "ci" | "demo" | "default";
  epochs: number;
  featureWorkers: number;
  /** Augmented views per training image (ingest's augmentViews). */
  augmentViews?: number;
  redis?: string;
  keepRunning: boolean;
}

/**
 * The whole pipeline on one machine, as separate processes: build the emoji dataset, start Redis,
 * feature workers, a trainer, a caption worker and the API; ingest; wait for features; train;
 * evaluate on the held-out art style; caption test images through the HTTP API; write the report.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const started = Date.now();
  // Each step says when it started: where the demo's minutes go, on the reader's own machine.
  const say = (line: string) =>
    process.stdout.write(`\n== ${line}   [${((Date.now() - started) / 1000).toFixed(0)} s]\n`);
  const base = parseEnv(CommonEnv, process.env, "demo");
  const home = path.resolve(base.CAPFLOW_HOME);
  const env: Record<string, string> = {
    CAPFLOW_HOME: home,
    ...(opts.redis ? { CAPFLOW_REDIS_URL: opts.redis } : {}),
  };
  Object.assign(process.env, env);
  const rt = await startRuntime("demo", CommonEnv, { signals: false });
  const supervisor = new Supervisor(path.join(home, "logs"), {
    CAPFLOW_REDIS_URL: rt.redisUrl,
    CAPFLOW_HOME: home,
  });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await supervisor.stopAll();
      await rt.shutdown.run();
    })());
  const onSignal = () => {
    process.stderr.write("\nstopping the demo's processes...\n");
    void stop().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    say(
      `1/7 processes: Redis at ${redactUrl(rt.redisUrl)}, ${opts.featureWorkers} feature worker(s), a trainer, a caption worker, the API`,
    );
    for (let i = 1; i <= opts.featureWorkers; i++) {
      // Split the cores between feature workers rather than oversubscribing them.
      await supervisor.start({
        name: `features-${i}`,
        args: ["worker", "features"],
        env: { CAPFLOW_FEATURE_THREADS: String(Math.max(1, Math.floor(2 / opts.featureWorkers))) },
      });
    }
    await supervisor.start({ name: "training-1", args: ["worker", "training"] });
    await supervisor.start({ name: "captions-1", args: ["worker", "captions"] });
    const api = await supervisor.start({ name: "api", args: ["api"], portVariable: "CAPFLOW_API_PORT" });
    const apiUrl = await api.opsUrl;
    if (!apiUrl) throw new Error("the API did not start; see .capflow/logs/api.log");
    process.stdout.write(
      `   API         ${apiUrl}/v1/captions   (OpenAPI: ${apiUrl}/openapi.json)\n` +
        `   bull-board  ${apiUrl}/admin/queues\n` +
        `   metrics     ${apiUrl}/metrics  (and each worker's ops port, in .capflow/logs/*.log)\n` +
        `   logs        ${path.join(home, "logs")}\n`,
    );

    say(`2/7 dataset: emoji images from npm packages (${opts.size} size)`);
    const datasetDir = path.join(home, "datasets", `emoji-${opts.size}`);
    const built = await buildEmojiDataset(datasetDir, { size: opts.size });
    const { train, val, test, emoji } = built.counts;
    process.stdout.write(
      `   ${emoji} emoji: train ${train} (Noto, Twemoji, OpenMoji, old Noto), val ${val} (EmojiOne), test ${test} (Fluent)\n`,
    );

    say("3/7 ingest: store images by content, write the manifest, enqueue feature shards");
    const dataset = `emoji-${opts.size}`;
    const featuresQueue = createQueue("features", { connection: rt.redis, prefix: rt.prefix });
    rt.shutdown.add("features queue", () => featuresQueue.close());
    const ingestBar = progress("ingest", process.stdout);
    const summary = await ingestDataset(rt.store, featuresQueue, {
      dataset,
      format: "flickr8k-csv",
      dir: datasetDir,
      shardSize: 64,
      onError: "fail",
      augmentViews: opts.augmentViews ?? 0,
      onProgress: ({ images, total }) => ingestBar.update(images, total),
    });
    ingestBar.stop();
    if (opts.augmentViews)
      process.stdout.write(
        `   + ${opts.augmentViews} augmented view(s) of each of the ${train} training images (training only)\n`,
      );
    process.stdout.write(
      `   ${summary.images} images, ${summary.captions} captions, ${summary.shards} shards ` +
        `(${summary.shardsEnqueued} enqueued, ${summary.shardsAlreadyDone} already done)\n`,
    );
    const checks = await ingestCheckSets(home, rt.store, featuresQueue, opts.size);
    process.stdout.write(
      `   check sets, extracted behind it: ${checks.sets.map((c) => c.dataset).join(", ")}` +
        `${checks.skipped.length ? `; skipped: ${checks.skipped.join(", ")}` : ""}\n`,
    );

    say("4/7 features: InceptionV3 (pretrained, from nsfwjs) on ONNX Runtime in the feature workers");
    const announced = await waitForEncoder(rt.store);
    const encoderId = announced.id;
    const featureStart = Date.now();
    const featureBar = progress("feature shards", process.stdout);
    const workersAlive = () =>
      supervisor.children.some((c) => c.name.startsWith("features") && c.child.exitCode === null);
    await waitForFeatures(rt.store, dataset, encoderId, (d, t) => featureBar.update(d, t), workersAlive);
    featureBar.stop();
    process.stdout.write(
      `   encoder ${encoderId}: ${summary.images} images in ${((Date.now() - featureStart) / 1000).toFixed(0)} s\n`,
    );
    if (announced.quality)
      process.stdout.write(
        `   quantised: cosine with fp32 on ${announced.quality.n} held-out images mean ${announced.quality.mean.toFixed(4)}, p1 ${announced.quality.p1.toFixed(4)}\n`,
      );

    say(
      `5/7 training: LSTM decoder, teacher forcing, ${opts.epochs} epochs, evaluated on the held-out EmojiOne style`,
    );
    const runId = `${dataset}-e${opts.epochs}`;
    const spec: JobInput<"training"> = {
      runId,
      dataset,
      encoderId,
      epochs: opts.epochs,
      seed: 1,
      batchSize: 64,
      learningRate: 0.002,
      publishAs: "default",
      beamWidth: 3,
    };
    const result = await submitRun(
      rt,
      spec,
      (p) =>
        void process.stdout.write(`   ${formatProgress(p)}
`),
    );
    printResult(result);

    // One caption per image: the run's test report and the API both decode with the default (beam
    // search with a length penalty), so the demo shows the same caption twice, not two decodings.
    say(
      `6/7 captions: test images (Fluent style, never seen in training), decoded as the API does by default (${result.test.decode.method}, width ${result.test.decode.beamWidth}, length penalty ${result.test.decode.lengthPenalty})`,
    );
    // Evenly spaced through the split, not its first ten: sorted by file name, those are all keycaps.
    const all = result.test.samples;
    const shown = all.filter((_, i) => i % Math.max(1, Math.floor(all.length / 10)) === 0).slice(0, 10);
    for (const s of shown) {
      process.stdout.write(
        `   ${s.file}\n      caption:   ${s.model}   (confidence ${s.confidence.toFixed(2)}${s.outOfDomain ? ", out of domain" : ""})\n` +
          `      reference: ${s.references.slice(0, 2).join(" | ")}\n`,
      );
    }
    const samples = result.test.samples.slice(0, 3);
    for (const s of samples) {
      const res = await fetch(`${apiUrl}/v1/captions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: s.key }),
      });
      const body = (await res.json()) as {
        caption?: string;
        confidence?: number | null;
        outOfDomain?: boolean;
        method?: string;
        modelVersion?: string;
        timings?: { totalMs: number };
      };
      const same = body.caption === s.model ? "same as above" : `the run's report said "${s.model}"`;
      process.stdout.write(
        `   via the API (${body.method}), ${s.file}: "${body.caption}" (${same}; confidence ${body.confidence?.toFixed(2) ?? "n/a"}` +
          `${body.outOfDomain ? ", out of domain" : ""}; ${body.modelVersion}, ${body.timings?.totalMs} ms)\n`,
      );
    }

    say("7/7 check sets: the published model, scored as `capflow eval` scores it");
    const { tf } = await loadTf();
    for (const check of checks.sets) {
      await waitForFeatures(rt.store, check.dataset, encoderId, () => {}, workersAlive);
      const r = await evaluateModel(rt.store, tf, {
        model: "default",
        dataset: check.dataset,
        split: "test",
      });
      const figure =
        check.measure === "exact"
          ? `exact match ${formatInterval(r.scores.model.exact)} (re-rank ${formatInterval(r.scores.rerank.exact)}, ` +
            `retrieval baseline ${formatInterval(r.scores.baseline.exact)})`
          : `${(r.outOfDomain.test * 100).toFixed(1)}% flagged out of domain`;
      process.stdout.write(`   ${check.label} (${check.dataset}, ${r.images} images): ${figure}\n`);
    }

    const report = path.join(home, "reports", `${runId}.html`);
    await fs.mkdir(path.dirname(report), { recursive: true });
    await writeReport(rt.store, runId, { outFile: report });
    process.stdout.write(
      `\nDone in ${((Date.now() - started) / 1000).toFixed(0)} s.\n` +
        `Run report: ${report}\n` +
        `Caption your own image next:  ./capflow up   (in one terminal), then  ./capflow caption my.jpg\n`,
    );
    if (opts.keepRunning) {
      process.stdout.write("Processes keep running (--keep-running); Ctrl-C stops them.\n");
      await new Promise(() => {});
    }
  } finally {
    await stop();
  }
}
