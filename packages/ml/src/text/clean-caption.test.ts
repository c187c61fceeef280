import { describe, expect, it } from "vitest";
import { cleanCaption } from "./clean-caption.ts";

describe("cleanCaption", () => {
  it("lowercases and strips punctuation like the tutorial", () => {
    expect(cleanCaption("A child in a pink dress is climbing up a set of stairs in an entry way .")).toEqual(
      "a child in a pink dress is climbing up a set of stairs in an entry way".split(" "),
    );
  });

  it("keeps tokens with digits and splits words on other punctuation", () => {
    expect(cleanCaption('Two dogs, "3" balls; 1st place-medal!')).toEqual([
      "two",
      "dogs",
      "3",
      "balls",
      "1st",
      "place",
      "medal",
    ]);
    expect(cleanCaption("keycap: 5")).toEqual(["keycap", "5"]);
  });

  it("drops tokens with digits with lettersOnly (the tutorial's isalpha rule)", () => {
    expect(cleanCaption('Two dogs, "3" balls; 1st place-medal!', { lettersOnly: true })).toEqual([
      "two",
      "dogs",
      "balls",
      "place",
      "medal",
    ]);
  });

  it("deletes apostrophes instead of splitting on them", () => {
    expect(cleanCaption("The man's dog doesn't bark")).toEqual(["the", "mans", "dog", "doesnt", "bark"]);
  });

  it("optionally drops one-letter tokens", () => {
    expect(cleanCaption("A dog and a cat", { dropSingleLetters: true })).toEqual(["dog", "and", "cat"]);
    expect(cleanCaption("A dog and a cat")).toEqual(["a", "dog", "and", "a", "cat"]);
  });

  it("keeps non-ASCII letters and is stable under Unicode normalisation", () => {
    expect(cleanCaption("Piñata")).toEqual(cleanCaption("Pin\u0303ata"));
    expect(cleanCaption("Piñata")).toEqual(["piñata"]);
  });

  it("returns nothing for a caption of only punctuation (and numbers, with lettersOnly)", () => {
    expect(cleanCaption(" ... !! ")).toEqual([]);
    expect(cleanCaption(" ... 42 !! ", { lettersOnly: true })).toEqual([]);
  });

  it("never emits start/end tokens", () => {
    expect(cleanCaption("<start> dog <end>")).toEqual(["start", "dog", "end"]);
  });
});
