import { imageMime, sniffImageFormat } from "@capflow/common";
import type { EpochMetrics } from "../checkpoint/checkpoint-store.ts";
import type { CaptionScores } from "../eval/evaluate.ts";
import type { ScoresWithIntervals } from "../eval/bootstrap.ts";
import type { RunResult } from "../run/train-run.ts";
import { SYSTEM_LABELS, SYSTEMS } from "../eval/test-report.ts";

/**
 * `capflow report <run>`: one self-contained HTML page for a training run. Pure: data in, string
 * out. No script, no CDN, no external fetch (a CSP forbids them): curves are inline SVG, images
 * are data: URIs. Every piece of text from the run is escaped.
 */

export const escapeHtml = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/** A line chart as inline SVG; non-finite values are skipped, a single point is drawn as a dot. */
export function lineChart(
  title: string,
  series: Series[],
  opts: { width?: number; height?: number } = {},
): string {
  const width = opts.width ?? 520;
  const height = opts.height ?? 260;
  const pad = { l: 56, r: 12, t: 28, b: 36 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const label = escapeHtml(title);
  if (all.length === 0) {
    return `<svg class="chart" role="img" aria-label="${label}" width="${width}" height="${height}"><text x="12" y="20">${label}: no data</text></svg>`;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const y0 = Math.min(0, ...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) y1 = y0 + 1;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const ticks = 4;
  const grid = Array.from({ length: ticks + 1 }, (_, i) => {
    const y = y0 + ((y1 - y0) * i) / ticks;
    return `<line x1="${pad.l}" x2="${width - pad.r}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmt(y, 3)}</text>`;
  }).join("");
  const epochs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  const step = Math.max(1, Math.ceil(epochs.length / 10));
  const xTicks = epochs
    .filter((_, i) => i % step === 0)
    .map(
      (x) =>
        `<text x="${sx(x).toFixed(1)}" y="${height - pad.b + 16}" text-anchor="middle" font-size="11">${x}</text>`,
    )
    .join("");
  const lines = series
    .map((s) => {
      const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
      const path = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      const dots = pts
        .map(
          ([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`,
        )
        .join("");
      return `<g class="series" data-name="${escapeHtml(s.name)}"><polyline fill="none" stroke="${s.color}" stroke-width="2" points="${path}"/>${dots}</g>`;
    })
    .join("");
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${pad.l + i * 90}" y="8" width="10" height="10" fill="${s.color}"/><text x="${pad.l + i * 90 + 14}" y="17" font-size="11">${escapeHtml(s.name)}</text>`,
    )
    .join("");
  return (
    `<svg class="chart" role="img" aria-label="${label}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">` +
    `<title>${label}</title>${grid}${xTicks}<text x="${(width / 2).toFixed(0)}" y="${height - 4}" text-anchor="middle" font-size="11">epoch</text>${lines}${legend}</svg>`
  );
}

const SCORE_COLS: Array<[keyof CaptionScores, string]> = [
  ["bleu1", "BLEU-1"],
  ["bleu2", "BLEU-2"],
  ["bleu3", "BLEU-3"],
  ["bleu4", "BLEU-4"],
  ["cider", "CIDEr-D"],
];

const INTERVAL_COLS: Array<[Exclude<keyof ScoresWithIntervals, "empty" | "repeats" | "images">, string]> = [
  ["bleu1", "BLEU-1"],
  ["bleu2", "BLEU-2"],
  ["bleu3", "BLEU-3"],
  ["bleu4", "BLEU-4"],
  ["cider", "CIDEr-D"],
  ["exact", "exact match"],
];

/** Every score with its bootstrap 95% interval; bold where the interval lies above the baseline's. */
export function scoresTable(test: RunResult["test"]): string {
  const head =
    `<tr><th>decoder</th>${INTERVAL_COLS.map(([, h]) => `<th>${h}</th>`).join("")}` +
    `<th>empty</th><th>triple repeats</th></tr>`;
  const base = test.scores.baseline;
  const body = SYSTEMS.map((sys) => {
    const s = test.scores[sys];
    const cells = INTERVAL_COLS.map(([k]) => {
      const beats = sys !== "baseline" && s[k].low > base[k].high;
      return (
        `<td class="num${beats ? " beats" : ""}" data-metric="${k}">${fmt(s[k].value)}` +
        `<small> [${fmt(s[k].low)}, ${fmt(s[k].high)}]</small></td>`
      );
    }).join("");
    const name = SYSTEM_LABELS[sys];
    return (
      `<tr data-decoder="${escapeHtml(sys)}"><th scope="row">${escapeHtml(name)}</th>${cells}` +
      `<td class="num" data-metric="empty">${s.empty}</td><td class="num" data-metric="repeats">${s.repeats}</td></tr>`
    );
  }).join("");
  const ood =
    `<p id="ood">Out of domain (similarity to the nearest training image below ${fmt(test.calibration.oodThreshold)}, ` +
    `${escapeHtml(test.calibration.rule)}): ` +
    (test.outOfDomain.val === null ? "" : `${fmt(test.outOfDomain.val * 100, 1)}% of validation images, `) +
    `${fmt(test.outOfDomain.test * 100, 1)}% of test images.</p>`;
  return (
    `<table id="scores"><caption>Test split (${test.images} images), bootstrap 95% intervals; ` +
    `bold: the whole interval is above the baseline's</caption>${head}${body}</table>${ood}`
  );
}

function epochTable(history: EpochMetrics[], best: number): string {
  const cols: Array<[keyof EpochMetrics, string, number]> = [
    ["trainLoss", "train loss", 4],
    ["valLoss", "val loss", 4],
    ["bleu1", "BLEU-1", 4],
    ["bleu4", "BLEU-4", 4],
    ["cider", "CIDEr-D", 4],
    ["seconds", "seconds", 1],
    ["captionsPerSecond", "captions/s", 1],
  ];
  const head = `<tr><th>epoch</th>${cols.map(([, h]) => `<th>${h}</th>`).join("")}</tr>`;
  const body = history
    .map(
      (h) =>
        `<tr${h.epoch === best ? ' class="best"' : ""}><td class="num">${h.epoch}</td>${cols.map(([k, , d]) => `<td class="num">${fmt(h[k], d)}</td>`).join("")}</tr>`,
    )
    .join("");
  return `<table id="epochs">${head}${body}</table>`;
}

function sampleGrid(
  samples: RunResult["test"]["samples"],
  images: Map<string, Buffer>,
  limit: number,
): string {
  const cards = samples.slice(0, limit).map((s) => {
    const bytes = images.get(s.key);
    const format = bytes ? sniffImageFormat(bytes) : undefined;
    const mime = format ? imageMime(format) : undefined;
    const img =
      bytes && mime
        ? `<img src="data:${mime};base64,${bytes.toString("base64")}" alt="${escapeHtml(s.file)}" loading="lazy">`
        : `<div class="noimg">image not available</div>`;
    const refs = s.references.map((r) => `<li>${escapeHtml(r)}</li>`).join("");
    return (
      `<figure class="sample">${img}<figcaption><div class="file">${escapeHtml(s.file)}</div>` +
      `<dl><dt>model</dt><dd class="model">${escapeHtml(s.model)}</dd>` +
      `<dt>confidence</dt><dd class="confidence">${fmt(s.confidence, 2)}${s.outOfDomain ? " (out of domain)" : ""}</dd>` +
      `<dt>greedy</dt><dd class="greedy">${escapeHtml(s.greedy)}</dd>` +
      `<dt>re-rank</dt><dd class="rerank">${escapeHtml(s.rerank)}</dd>` +
      `<dt>baseline</dt><dd class="baseline">${escapeHtml(s.baseline)}</dd></dl><ol class="refs">${refs}</ol></figcaption></figure>`
    );
  });
  const more = samples.length > limit ? `<p>Showing ${limit} of ${samples.length} test images.</p>` : "";
  return `<div id="samples" class="grid">${cards.join("")}</div>${more}`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em}table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 8px}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.beats{font-weight:bold}tr.best{background:#eef7ee}
.charts{display:flex;flex-wrap:wrap;gap:16px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.sample{margin:0;border:1px solid #ddd;padding:8px;border-radius:4px}.sample img{width:100%;height:auto;image-rendering:auto}
.sample dl{margin:4px 0;font-size:.9em}.sample dt{font-weight:bold;float:left;margin-right:4px}.sample dd{margin:0 0 2px}
.refs{font-size:.8em;color:#555;padding-left:18px}.file{font-size:.75em;color:#777;word-break:break-all}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:.85em}dl.facts dt{font-weight:bold}`;

export interface ReportOptions {
  /** Test images shown in the grid (the HTML grows by each image's size). */
  maxImages?: number;
  /** When the report was made (fixed in tests). */
  generatedAt?: Date;
}

export function renderReport(
  result: RunResult,
  config: Record<string, unknown>,
  images: Map<string, Buffer>,
  opts: ReportOptions = {},
): string {
  const h = result.history;
  const x = (f: (m: EpochMetrics) => number): Array<[number, number]> => h.map((m) => [m.epoch, f(m)]);
  const lossChart = lineChart("Loss per epoch", [
    { name: "train", color: PALETTE[0]!, points: x((m) => m.trainLoss) },
    { name: "val", color: PALETTE[1]!, points: x((m) => m.valLoss) },
  ]);
  const scoreChart = lineChart(
    "Validation scores per epoch",
    SCORE_COLS.map(([k, name], i) => ({ name, color: PALETTE[i]!, points: x((m) => m[k]) })),
  );
  const totalSeconds = h.reduce((a, m) => a + m.seconds, 0);
  const meanRate = h.length ? h.reduce((a, m) => a + m.captionsPerSecond, 0) / h.length : NaN;
  const title = `capflow run ${result.runId}`;
  const facts: Array<[string, string]> = [
    [
      "epochs",
      `${h.length} of ${result.epochs}${result.resumedFrom ? ` (resumed after epoch ${result.resumedFrom})` : ""}`,
    ],
    ["best epoch", `${result.best.epoch} (validation CIDEr-D ${fmt(result.best.cider)})`],
    ["training time", `${fmt(totalSeconds, 1)} s (${fmt(totalSeconds / Math.max(1, h.length), 1)} s/epoch)`],
    ["throughput", `${fmt(meanRate, 1)} captions/s`],
    ["published", result.published ?? "not published"],
    ["generated", (opts.generatedAt ?? new Date()).toISOString()],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<dl class="facts" id="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>
<h2>Curves</h2><div class="charts" id="curves">${lossChart}${scoreChart}</div>
<h2>Test scores against the retrieval baseline</h2>${scoresTable(result.test)}
<h2>Epochs</h2>${epochTable(h, result.best.epoch)}
<h2>Test images</h2>${sampleGrid(result.test.samples, images, opts.maxImages ?? 48)}
<h2>Configuration</h2><pre id="config">${escapeHtml(JSON.stringify(config, null, 2))}</pre>
</body></html>
`;
}
