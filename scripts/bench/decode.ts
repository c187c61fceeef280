/**
 * The caption decoder alone: greedy decoding of 1 row vs 64 rows at once, and beam search (width 3),
 * on the tfjs model (the compute backend: wasm here) and on ONNX Runtime (loadOnnxDecoder, what the
 * caption worker serves with), for a model of the tutorial's size (vocab 1000, embed 200, units 256,
 * maxLength 20; random weights, which never emit <end>: every caption runs the full 19 steps).
 *
 *   pnpm bench decode [--rounds 3] [--threads 1,<cores>] [--batch 64]
 *
 * Each round measures every configuration back to back; the summary is the median over rounds, in
 * captions/s and in CPU ms a caption (process.cpuUsage, every thread).
 */
import { parseArgs } from "node:util";
import { createCaptionModel, loadOnnxDecoder, loadTf, type CaptionDecoder } from "@capflow/ml";
import { cores, load, runBench } from "./_support.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    threads: { type: "string", default: [...new Set([1, cores])].join(",") },
    batch: { type: "string", default: "64" },
  },
});
const rounds = Number(values.rounds);
const batch = Number(values.batch);
const threadCounts = values.threads.split(",").map(Number);
const F = 2048;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Captions per second of `decode(n)` over about `ms` milliseconds (at least 2 calls, after one
 * warm-up), and CPU milliseconds per caption (all threads; other processes disturb it far less).
 */
async function rate(
  n: number,
  decode: (n: number) => Promise<unknown> | unknown,
  ms = 1500,
): Promise<{ perSecond: number; cpuMs: number }> {
  await decode(n);
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (calls < 2 || performance.now() - t0 < ms) {
    await decode(n);
    calls++;
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: (calls * n * 1000) / wall, cpuMs: (cpu.user + cpu.system) / 1000 / (calls * n) };
}

runBench(async (cleanup) => {
  const { tf, backend } = await loadTf();
  const model = createCaptionModel(tf, {
    vocabSize: 1000,
    maxLength: 20,
    embedDim: 200,
    units: 256,
    seed: 3,
  });
  cleanup.add("model", async () => model.dispose());
  const feats = new Float32Array(batch * F).map((_, i) => Math.abs(Math.sin(i * 0.013)));
  const rows = (n: number) => feats.subarray(0, n * F);
  const decoders: Array<[string, CaptionDecoder]> = [];
  for (const threads of threadCounts) {
    const d = await loadOnnxDecoder(model, { threads, logger: { info() {}, warn() {} } });
    cleanup.add(`decoder ${threads}`, () => d.dispose());
    decoders.push([`onnx ${threads} thread${threads > 1 ? "s" : ""}`, d]);
  }
  console.log(
    `capflow decode benchmark: vocab 1000, embed 200, units 256, 19 steps a caption; tfjs on ${backend}, onnxruntime-node cpu; ${load()}`,
  );

  const results = new Map<string, number[]>();
  const cpuMs = new Map<string, number[]>();
  const note = (label: string, v: { perSecond: number; cpuMs: number }) => {
    results.set(label, [...(results.get(label) ?? []), v.perSecond]);
    cpuMs.set(label, [...(cpuMs.get(label) ?? []), v.cpuMs]);
  };
  for (let r = 1; r <= rounds; r++) {
    const line: string[] = [];
    const measure = async (label: string, n: number, decode: (n: number) => Promise<unknown> | unknown) => {
      const v = await rate(n, decode);
      note(label, v);
      line.push(`${label} ${v.perSecond.toFixed(0)} (${v.cpuMs.toFixed(2)} ms CPU)`);
    };
    await measure("tfjs batch-1", 1, (n) => model.greedyDecode(rows(n), n));
    await measure(`tfjs batch-${batch}`, batch, (n) => model.greedyDecode(rows(n), n));
    await measure("tfjs beam-3", 1, () => model.beamSearch(rows(1), { width: 3 }));
    for (const [name, d] of decoders) {
      await measure(`${name} batch-1`, 1, (n) => d.greedyDecode(rows(n), n));
      await measure(`${name} batch-${batch}`, batch, (n) => d.greedyDecode(rows(n), n));
      await measure(`${name} beam-3`, 1, () => d.beamSearch(rows(1), { width: 3 }));
    }
    console.log(`round ${r} (captions/s): ${line.join(", ")}; ${load()}`);
  }

  console.log(`\nmedians over ${rounds} rounds (${load()}):`);
  const m = (label: string) => median(results.get(label)!);
  for (const label of results.keys())
    console.log(
      `${label}: ${m(label).toFixed(1)} captions/s, ${median(cpuMs.get(label)!).toFixed(2)} ms CPU a caption`,
    );
  const configs = ["tfjs", ...decoders.map(([name]) => name)];
  for (const c of configs)
    console.log(
      `${c}: batch-${batch} / batch-1 = ${(m(`${c} batch-${batch}`) / m(`${c} batch-1`)).toFixed(2)}x`,
    );
  for (const [name] of decoders)
    console.log(
      `${name} vs tfjs: batch-1 ${(m(`${name} batch-1`) / m("tfjs batch-1")).toFixed(1)}x, batch-${batch} ${(m(`${name} batch-${batch}`) / m(`tfjs batch-${batch}`)).toFixed(1)}x, beam-3 ${(m(`${name} beam-3`) / m("tfjs beam-3")).toFixed(1)}x`,
    );
});
