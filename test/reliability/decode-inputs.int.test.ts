import { describe, expect, it } from "vitest";
import { DECODE_FAILURE_REASONS } from "@capflow/common";
import { badImageCorpus, bombs } from "../support/fault/bad-images.ts";
import { runDecodeChild, writeCases } from "../support/fault/decode-runner.ts";

// docs/reliability.md tests 8, 9 and 10 (short version) on the real decode path (sharp/libvips), each run in
// a child process so that a native crash or a hang is a test failure, not a dead test runner.
describe("the decode path on hostile inputs", () => {
  it("gives every file of the bad-image corpus a valid 299×299×3 input or a reason code, without a crash", async () => {
    const corpus = await badImageCorpus();
    expect(corpus.length).toBeGreaterThanOrEqual(300);
    const run = await runDecodeChild(["corpus", await writeCases(corpus)]);
    expect(run.crashes).toEqual([]);
    expect(run.lines).toHaveLength(corpus.length);
    const byName = new Map(run.lines.map((l) => [String(l.i), l]));
    const tally: Record<string, number> = {};
    for (const l of run.lines) tally[l.ok ? "ok" : l.reason!] = (tally[l.ok ? "ok" : l.reason!] ?? 0) + 1;
    console.info(JSON.stringify({ corpus: corpus.length, outcomes: tally, peakRssMb: run.peakRss >> 20 }));
    const outcome = (kind: string) => corpus.filter((c) => c.kind === kind).map((c) => byName.get(c.name)!);
    for (const line of run.lines) {
      if (line.ok) expect(line.valid, String(line.i)).toBe(true);
      else expect(DECODE_FAILURE_REASONS, String(line.i)).toContain(line.reason);
    }
    // Inputs that must decode (colour spaces, depths, channels, orientations, first frame only).
    for (const kind of ["cmyk", "16-bit", "grey", "grey+alpha", "rgba", "exif-orientation", "animated"])
      expect(
        outcome(kind).every((l) => l.ok && l.valid),
        kind,
      ).toBe(true);
    // Inputs that must be refused, with the right reason.
    for (const kind of ["text", "tiff", "svg", "heic-like"])
      expect(new Set(outcome(kind).map((l) => l.reason)), kind).toEqual(new Set(["format"]));
    expect(new Set(outcome("empty").map((l) => l.reason))).toEqual(new Set(["empty"]));
    // Truncated or corrupt files decode (damage in ignorable bytes) or fail as decode/format, or
    // too_large when the damage hit the declared size.
    for (const l of [...outcome("truncated"), ...outcome("corrupt")])
      if (!l.ok) expect(["decode", "format", "too_large"]).toContain(l.reason);
    expect(outcome("truncated").filter((l) => !l.ok).length).toBeGreaterThan(outcome("truncated").length / 2);
  });

  it("refuses decompression and pixel-flood bombs before allocating, with memory bounded", async () => {
    const cases = await bombs();
    const run = await runDecodeChild(["corpus", await writeCases(cases)]);
    expect(run.crashes).toEqual([]);
    const by = new Map(run.lines.map((l) => [String(l.i), l]));
    console.info(
      JSON.stringify({ bombs: run.lines.map((l) => [l.i, l.reason ?? "ok"]), peakRssMb: run.peakRss >> 20 }),
    );
    expect(by.get("png-30000x30000")).toMatchObject({ ok: false, reason: "too_large" });
    expect(by.get("png-65535x65535")).toMatchObject({ ok: false, reason: "too_large" });
    expect(by.get("svg-huge")).toMatchObject({ ok: false, reason: "format" });
    // First frame only: a 1000-frame GIF costs one 16×16 frame.
    expect(by.get("gif-1000-frames")).toMatchObject({ ok: true, valid: true });
    // 30000×30000×3 would be 2.7 GB: a generous bound far below that.
    expect(run.peakRss).toBeLessThan(600 * 1024 * 1024);
  });

  it("survives 500 mutated images without a crash or a hang", async () => {
    const run = await runDecodeChild(["fuzz", "1", "0", "500"], {
      hangMs: 60_000,
      restartFrom: (from) => (from < 500 ? ["fuzz", "1", String(from), "500"] : undefined),
    });
    expect(run.crashes).toEqual([]);
    expect(run.lines).toHaveLength(500);
    for (const l of run.lines) if (!l.ok) expect(DECODE_FAILURE_REASONS).toContain(l.reason);
  });
});
