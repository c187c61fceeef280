import { createHash } from "node:crypto";
import type { Split } from "../datasets/types.ts";

/** Decisions about how a dataset becomes shards and jobs: pure functions, tested without I/O. */

export const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/**
 * A shard is named by its content, so the same images always make the same shard and job id. Augmented
 * views are content too: the same images with other views (or another recipe) are another shard, so a
 * done shard is never taken for one with different outputs. Without views the id is what it always was.
 */
export function shardIdFor(
  dataset: string,
  imageIds: readonly string[],
  augment?: { recipe: string; views: readonly number[] },
): string {
  const lines =
    augment && augment.views.some((v) => v > 0)
      ? [`augment ${augment.recipe}`, ...imageIds.map((id, i) => `${id} ${augment.views[i] ?? 0}`)]
      : imageIds;
  return `s${sha256(`${dataset}\n${lines.join("\n")}`).slice(0, 24)}`;
}

/** Augmented views per image: `views` for training images, none for validation and test. */
export function viewsFor(split: Split, views: number): number {
  return split === "train" ? views : 0;
}

/** BullMQ custom ids must not contain ':'; keep them readable and content-derived. */
export const featuresJobId = (dataset: string, shardId: string) => `features.${dataset}.${shardId}`;

/** Datasets without split lists get a stable split from the image's file name: 80/10/10. */
export function splitFor(imageName: string): Split {
  const bucket = parseInt(sha256(imageName).slice(0, 8), 16) % 100;
  return bucket < 80 ? "train" : bucket < 90 ? "val" : "test";
}

const SIGNATURES: Array<[string, (b: Uint8Array) => boolean]> = [
  ["jpg", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ["png", (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ["gif", (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46],
  [
    "webp",
    (b) =>
      Buffer.from(b.subarray(0, 4)).toString("latin1") === "RIFF" &&
      Buffer.from(b.subarray(8, 12)).toString("latin1") === "WEBP",
  ],
];

/**
 * The stored extension comes from the bytes, not the file name (a text file named .jpg is stored as
 * .bin and quarantined by the feature worker with a reason, not trusted).
 */
export function extensionOf(bytes: Uint8Array): string {
  return SIGNATURES.find(([, test]) => test(bytes))?.[0] ?? "bin";
}

/** Groups ids into fixed-size shards as they stream by. */
export class ShardBuilder {
  private pending: string[] = [];
  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`shard size must be a positive integer, got ${size}`);
  }
  add(id: string): string[] | undefined {
    this.pending.push(id);
    if (this.pending.length < this.size) return undefined;
    const full = this.pending;
    this.pending = [];
    return full;
  }
  flush(): string[] | undefined {
    const rest = this.pending;
    this.pending = [];
    return rest.length > 0 ? rest : undefined;
  }
}
