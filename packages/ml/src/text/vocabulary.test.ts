import { describe, expect, it } from "vitest";
import { buildVocabulary, END_ID, PAD_ID, START_ID, TEXT_VERSION, UNK_ID, Vocabulary } from "./vocabulary.ts";

const lists = [
  ["a", "dog", "runs"],
  ["a", "dog", "sits"],
  ["the", "cat", "runs"],
  ["a", "cat"],
];

describe("buildVocabulary", () => {
  it("puts the special tokens first and sorts words by count, then token", () => {
    const v = buildVocabulary(lists, { minCount: 1 });
    expect(v.tokens).toEqual([
      "<pad>",
      "<start>",
      "<end>",
      "<unk>",
      "a",
      "cat",
      "dog",
      "runs",
      "sits",
      "the",
    ]);
    expect([PAD_ID, START_ID, END_ID, UNK_ID]).toEqual([0, 1, 2, 3]);
  });

  it("does not depend on input order", () => {
    const a = buildVocabulary(lists, { minCount: 1 });
    const b = buildVocabulary([...lists].reverse(), { minCount: 1 });
    expect(JSON.stringify(a.toJSON())).toBe(JSON.stringify(b.toJSON()));
  });

  it("applies the count threshold and the size cap", () => {
    expect(buildVocabulary(lists, { minCount: 2 }).tokens.slice(4)).toEqual(["a", "cat", "dog", "runs"]);
    expect(buildVocabulary(lists, { minCount: 1, maxSize: 6 }).tokens.slice(4)).toEqual(["a", "cat"]);
  });

  it("accepts a generator", () => {
    function* gen() {
      yield* lists;
    }
    expect(buildVocabulary(gen(), { minCount: 1 }).size).toBe(10);
  });
});

describe("encode/decode", () => {
  const v = buildVocabulary(lists, { minCount: 2 });

  it("adds <start> and <end>, maps unknown words to <unk> and pads with 0", () => {
    const ids = v.encode(["a", "dog", "flies"], 8);
    expect(Array.from(ids)).toEqual([START_ID, v.idOf("a"), v.idOf("dog"), UNK_ID, END_ID, 0, 0, 0]);
    expect(v.decode(ids)).toBe("a dog <unk>");
  });

  it("keeps <end> when a caption is longer than maxLen, so the model learns to stop", () => {
    const ids = v.encode(["a", "dog", "runs", "a", "cat"], 5);
    expect(Array.from(ids)).toEqual([START_ID, v.idOf("a"), v.idOf("dog"), v.idOf("runs"), END_ID]);
    expect(v.decode(ids)).toBe("a dog runs");
  });

  it("encodes the last word of a caption that fits exactly (the tutorial dropped it)", () => {
    expect(v.decode(v.encode(["a", "cat"], 4))).toBe("a cat");
  });

  it("stops decoding at the first <end>", () => {
    expect(v.decode([START_ID, v.idOf("cat"), END_ID, v.idOf("dog")])).toBe("cat");
  });

  it("rejects a maxLen without room for <start> and <end>", () => {
    expect(() => v.encode([], 1)).toThrow(/maxLen/);
  });
});

describe("JSON", () => {
  it("round-trips and carries TEXT_VERSION", () => {
    const v = buildVocabulary(lists, { minCount: 1, maxSize: 8 });
    const json = JSON.parse(JSON.stringify(v));
    expect(json.textVersion).toBe(TEXT_VERSION);
    const back = Vocabulary.fromJSON(json);
    expect(back.tokens).toEqual(v.tokens);
    expect(back.toJSON()).toEqual(v.toJSON());
  });

  it("refuses another text version or a broken token table", () => {
    const json = buildVocabulary(lists, { minCount: 1 }).toJSON();
    expect(() => Vocabulary.fromJSON({ ...json, textVersion: TEXT_VERSION + 1 })).toThrow(/textVersion/);
    expect(() => Vocabulary.fromJSON({ ...json, tokens: ["x", ...json.tokens.slice(1)] })).toThrow(/<pad>/);
  });
});
