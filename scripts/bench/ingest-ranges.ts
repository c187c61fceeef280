/**
 * What it costs an ingest worker to get to its range (`capflow ingest --distribute`), at the first and
 * at the last range of a large caption file, read from the range's byte offset (the job's `from`) and,
 * as every range was read before offsets, from the file's beginning skipping the records before it.
 *
 *   pnpm bench ingest-ranges [--lines 1000000] [--range-size 10000] [--repeat 3]
 *
 * A synthetic jsonl-folder captions file, one image a line, and no image files: parse-only. Each range
 * is `storeRange` as the worker runs it, into a LocalStore; its images are missing, so it looks for
 * each (one realpath) and stores none, the same work at every range. Figures: wall and CPU ms per range
 * (median of --repeat; the skipping last range once), the last/first ratio, the command's enumeration,
 * and the line splitter against node:readline over the whole file. The machine is shared: compare
 * ratios within one run.
 */
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { LocalStore, parseJobData, type JobData } from "@capflow/common";
import { enumerateRanges, readLines, storeRange } from "@capflow/ingest";
import { load, runBench, tempDir } from "./_support.ts";

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "1000000" },
    "range-size": { type: "string", default: "10000" },
    repeat: { type: "string", default: "3" },
  },
});
const N = Number(values.lines);
const rangeSize = Number(values["range-size"]);
const repeat = Number(values.repeat);

interface Timing {
  ms: number;
  cpuMs: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Timing> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function median(times: number, fn: () => Promise<unknown>): Promise<Timing> {
  const runs: Timing[] = [];
  for (let i = 0; i < times; i++) runs.push(await timed(fn));
  runs.sort((a, b) => a.ms - b.ms);
  return runs[Math.floor(runs.length / 2)]!;
}

const fmt = (t: Timing) => `${t.ms.toFixed(0)} ms (CPU ${t.cpuMs.toFixed(0)} ms)`;

runBench(async (cleanup) => {
  console.log(`ingest range setup: ${N} lines, ranges of ${rangeSize}; ${load()}`);
  const dir = await tempDir("ingest-ranges");
  cleanup.add("dataset dir", () => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "captions.jsonl");
  const out = createWriteStream(file);
  for (let i = 0; i < N; i++) {
    const line = `${JSON.stringify({ image: `images/${String(i).padStart(8, "0")}.jpg`, captions: [`a synthetic caption for image ${i} .`, "a second caption ."] })}\n`;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  const mib = (await fs.stat(file)).size / 2 ** 20;
  console.log(`  captions.jsonl: ${mib.toFixed(1)} MiB`);

  // The splitter that gives line offsets, against node:readline (what the readers used before).
  const rl = await median(1, async () => {
    let n = 0;
    for await (const _ of createInterface({
      input: createReadStream(file, { encoding: "utf8" }),
      crlfDelay: Infinity,
    }))
      n++;
    return n;
  });
  const own = await median(1, async () => {
    let n = 0;
    for await (const _ of readLines(file)) n++;
    return n;
  });
  console.log(`  whole file, lines only: node:readline ${fmt(rl)}, readLines (with offsets) ${fmt(own)}`);

  let plan: Awaited<ReturnType<typeof enumerateRanges>> | undefined;
  const enumerated = await timed(async () => {
    plan = await enumerateRanges(dir, {
      dataset: "bench",
      format: "jsonl-folder",
      rangeSize,
      onError: "skip",
    });
  });
  const ranges = plan!.ranges;
  console.log(
    `  enumeration (the command, once per run: lines, JSON, checks): ${fmt(enumerated)}, ${ranges.length} ranges`,
  );

  const job = (r: number, seek: boolean): JobData<"ingest"> => {
    const { from, ...range } = ranges[r]!;
    return parseJobData("ingest", {
      runId: plan!.runId,
      dataset: "bench",
      format: "jsonl-folder",
      dir,
      ...range,
      ...(seek && from ? { from } : {}),
    });
  };
  // A fresh store each time: a stored part would make the range a no-op.
  const work = (r: number, seek: boolean) => async () => {
    const storeDir = await tempDir("ingest-ranges-store");
    try {
      await storeRange(new LocalStore(storeDir), job(r, seek), { concurrency: 16 });
    } finally {
      await fs.rm(storeDir, { recursive: true, force: true });
    }
  };

  const last = ranges.length - 1;
  const rows: Array<[string, Timing, Timing]> = [];
  for (const seek of [true, false]) {
    const first = await median(repeat, work(0, seek));
    const end = await median(seek ? repeat : 1, work(last, seek));
    rows.push([
      seek ? "from the range's offset (now)" : "from the file's start, skipping (before)",
      first,
      end,
    ]);
    console.log(`  ${rows.at(-1)![0]}: first range ${fmt(first)}, last range ${fmt(end)}; ${load()}`);
  }
  console.log("\n| range read | first range | last range | last / first |");
  console.log("| --- | --- | --- | --- |");
  for (const [label, first, end] of rows)
    console.log(
      `| ${label} | ${fmt(first)} | ${fmt(end)} | ${(end.ms / first.ms).toFixed(1)}× ` +
        `(CPU ${(end.cpuMs / first.cpuMs).toFixed(1)}×) |`,
    );
  const [[, seekFirst, seekLast], [, skipFirst, skipLast]] = rows as [
    [string, Timing, Timing],
    [string, Timing, Timing],
  ];
  console.log(
    `\nlast range, skipping / from the offset: ${(skipLast.ms / seekLast.ms).toFixed(1)}× wall, ` +
      `${(skipLast.cpuMs / seekLast.cpuMs).toFixed(1)}× CPU`,
  );
  // Range setup grows linearly with the range's position when skipping, so all ranges together cost
  // about (first + last) / 2 each.
  const all = (a: Timing, b: Timing) => (((a.cpuMs + b.cpuMs) / 2) * ranges.length) / 1000;
  console.log(
    `all ${ranges.length} ranges (estimated from first and last, CPU): skipping ${all(skipFirst, skipLast).toFixed(0)} s, ` +
      `from offsets ${all(seekFirst, seekLast).toFixed(0)} s`,
  );
});
