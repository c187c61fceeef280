import { createHash } from "node:crypto";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { AUGMENT_RECIPES } from "@capflow/common";
import { planView } from "./augment-view.ts";
import { ALPHA_BACKGROUND, preprocessImage, type PreprocessResult } from "./decode-image.ts";

const SHA = "a".repeat(64);

function pixels(r: PreprocessResult): Float32Array {
  if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
  return r.pixels;
}

/** A transparent 120×120 PNG with an opaque red disc in the middle and a blue bar. */
async function emojiLike(): Promise<Buffer> {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120">` +
    `<circle cx="60" cy="60" r="40" fill="#d22"/><rect x="30" y="50" width="60" height="8" fill="#23c"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

describe("planView", () => {
  it("is a pure function of (image, view, recipe) and differs between views", () => {
    for (const recipe of AUGMENT_RECIPES) {
      expect(planView(SHA, 1, recipe)).toEqual(planView(SHA, 1, recipe));
      expect(planView(SHA, 1, recipe)).not.toEqual(planView(SHA, 2, recipe));
    }
    expect(planView(SHA, 1)).not.toEqual(planView("b".repeat(64), 1));
  });

  it("keeps every operation in its range and never plans a view that changes nothing", () => {
    for (let i = 0; i < 400; i++) {
      const p = planView(`${i}`.padStart(64, "0"), 1 + (i % 5), "mix");
      expect(p.geometry || p.lowRes || p.blur || p.jpeg).toBeTruthy();
      if (p.lowRes) expect(p.lowRes.size).toBeGreaterThanOrEqual(32);
      if (p.lowRes) expect(p.lowRes.size).toBeLessThanOrEqual(96);
      if (p.geometry) {
        const { size, left, top } = p.geometry;
        expect(size).toBeGreaterThanOrEqual(179);
        expect(left + size).toBeLessThanOrEqual(299);
        expect(top + size).toBeLessThanOrEqual(299);
      }
      if (p.jpeg) expect(p.jpeg.quality).toBeGreaterThanOrEqual(25);
      if (p.blur) expect(p.blur.sigma).toBeGreaterThanOrEqual(0.6);
    }
  });

  it("refuses view 0 (the clean image is not a view)", () => {
    expect(() => planView(SHA, 0)).toThrow(/view/);
  });
});

describe("preprocessImage with a view", () => {
  it("gives the same pixels for the same bytes and view, other pixels for another view", async () => {
    const png = await emojiLike();
    const clean = pixels(await preprocessImage(png));
    const a = pixels(await preprocessImage(png, { view: { index: 1 } }));
    const again = pixels(await preprocessImage(Buffer.from(png), { view: { index: 1 } }));
    const b = pixels(await preprocessImage(png, { view: { index: 2 } }));
    expect(Buffer.from(again.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(clean.buffer))).toBe(false);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(false);
  });

  it("shrinks and enlarges (lowres), and puts transparent pixels on the plan's background", async () => {
    const png = await emojiLike();
    const clean = pixels(await preprocessImage(png));
    const corner = (p: Float32Array) => [0, 1, 2].map((c) => Math.round((p[c]! + 1) * 127.5));
    expect(corner(clean)).toEqual([ALPHA_BACKGROUND.r, ALPHA_BACKGROUND.g, ALPHA_BACKGROUND.b]);
    for (let view = 1; view <= 4; view++) {
      const plan = planView(createHash("sha256").update(png).digest("hex"), view, "background");
      const p = pixels(await preprocessImage(png, { view: { index: view, recipe: "background" } }));
      expect(corner(p)).toEqual([plan.background!.r, plan.background!.g, plan.background!.b]);
    }
    // Gradient energy falls when a view is drawn at 32-96 px and enlarged.
    const energy = (p: Float32Array) => {
      let e = 0;
      for (let i = 3; i < p.length; i += 3) e += (p[i]! - p[i - 3]!) ** 2;
      return e;
    };
    const low = pixels(await preprocessImage(png, { view: { index: 1, recipe: "lowres" } }));
    expect(energy(low)).toBeLessThan(energy(clean));
  });

  it("still refuses what the clean path refuses", async () => {
    const r = await preprocessImage(Buffer.from("not an image"), { view: { index: 1 } });
    expect(r.ok).toBe(false);
  });
});
