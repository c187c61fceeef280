import { describe, expect, it } from "vitest";
import { DEFAULT_DECODE } from "@capflow/common";
import type { RunResult } from "../run/train-run.ts";
import { escapeHtml, lineChart, renderReport } from "./render-report.ts";

const scores = { bleu1: 0.4, bleu2: 0.2, bleu3: 0.1, bleu4: 0.05, cider: 0.3 };
const iv = (value: number) => ({ value, low: value - 0.05, high: value + 0.05 });
const withIntervals = (cider: number) => ({
  bleu1: iv(0.4),
  bleu2: iv(0.2),
  bleu3: iv(0.1),
  bleu4: iv(0.05),
  cider: iv(cider),
  exact: iv(0.2),
  empty: 0,
  repeats: 0,
  images: 2,
});
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

function run(overrides: Partial<RunResult> = {}): RunResult {
  return {
    runId: "r1",
    epochs: 2,
    resumedFrom: 0,
    best: { epoch: 2, cider: 0.3 },
    history: [1, 2].map((epoch) => ({
      epoch,
      trainLoss: 3 / epoch,
      valLoss: NaN,
      ...scores,
      seconds: 10,
      captionsPerSecond: 50,
    })),
    test: {
      images: 2,
      decode: DEFAULT_DECODE,
      scores: {
        model: withIntervals(0.3),
        greedy: withIntervals(0.3),
        rerank: withIntervals(0.15),
        baseline: withIntervals(0.1),
      },
      calibration: { a: -3, b: 5, oodThreshold: 0.4, rule: "2nd percentile" },
      outOfDomain: { val: 0.02, test: 0.05 },
      samples: [
        {
          key: "images/a.png",
          file: "a<b>.png",
          model: "<img src=x onerror=alert(1)>",
          greedy: "g",
          rerank: "r",
          baseline: "c",
          references: ["r & r"],
          confidence: 0.5,
          outOfDomain: false,
        },
        {
          key: "images/missing.png",
          file: "m.png",
          model: "b",
          greedy: "g",
          rerank: "r",
          baseline: "c",
          references: [],
          confidence: 0.1,
          outOfDomain: true,
        },
      ],
    },
    ...overrides,
  };
}

describe("renderReport", () => {
  it("escapes every caption, file name and config value", () => {
    const html = renderReport(run(), { note: '"><script>x</script>' }, new Map([["images/a.png", PNG]]));
    expect(html).not.toContain("<script>x");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&#60;img src=x onerror=alert(1)&#62;");
    expect(html).toContain("r &#38; r");
    expect(escapeHtml(`<&"'>`)).toBe("&#60;&#38;&#34;&#39;&#62;");
  });

  it("embeds images as data: URIs and marks the missing ones, loading nothing from the network", () => {
    const html = renderReport(run(), {}, new Map([["images/a.png", PNG]]));
    expect(html.match(/<img /g)).toHaveLength(1);
    expect(html).toContain(`src="data:image/png;base64,${PNG.toString("base64")}"`);
    expect(html).toContain("image not available");
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(html).toContain("default-src 'none'");
  });

  it("draws curves with non-finite points skipped and marks scores that beat the baseline", () => {
    const html = renderReport(run(), {}, new Map());
    expect(html).toContain(
      '<g class="series" data-name="val"><polyline fill="none" stroke="#d62728" stroke-width="2" points=""/>',
    );
    // CIDEr of the default decoding and greedy: intervals above the baseline's; re-rank's overlaps it.
    expect(html.match(/class="num beats"/g)).toHaveLength(2);
    expect(html).toContain("5.0% of test images");
    expect(lineChart("empty", [])).toContain("no data");
  });
});
