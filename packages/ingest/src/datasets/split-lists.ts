// Flickr8k's split lists: which image belongs to train, val and test when a dataset ships them.
import path from "node:path";
import { isFile, readLines } from "./dataset-files.ts";
import type { Split } from "./types.ts";

export const SPLIT_LIST_FILES: Readonly<Record<Split, string>> = {
  train: "Flickr_8k.trainImages.txt",
  val: "Flickr_8k.devImages.txt",
  test: "Flickr_8k.testImages.txt",
};

/**
 * Flickr8k's split lists (`Flickr_8k.{train,dev,test}Images.txt`), looked up in `dirs` in order.
 * Undefined when none exists: ingest then assigns a deterministic hash split.
 */
export async function loadSplitLists(dirs: readonly string[]): Promise<Map<string, Split> | undefined> {
  for (const dir of dirs) {
    const found = await Promise.all(
      (Object.entries(SPLIT_LIST_FILES) as Array<[Split, string]>).map(async ([split, name]) => {
        const p = path.join(dir, name);
        return (await isFile(p)) ? ([split, p] as const) : undefined;
      }),
    );
    const lists = found.filter((x) => x !== undefined);
    if (lists.length === 0) continue;
    const splits = new Map<string, Split>();
    for (const [split, p] of lists) {
      for await (const { text } of readLines(p)) {
        const name = text.trim();
        if (name) splits.set(name, split);
      }
    }
    return splits;
  }
  return undefined;
}
