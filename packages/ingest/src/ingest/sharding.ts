import { sha256 } from "@capflow/common";
import type { Split } from "../datasets/types.ts";

/** Decisions about how a dataset becomes shards and jobs: pure functions, tested without I/O. */

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

// Feature job ids live in the job catalog (common), beside the other queues' ids.
export { featuresJobId } from "@capflow/common";

/** Datasets without split lists get a stable split from the image's file name: 80/10/10. */
export function splitFor(imageName: string): Split {
  const bucket = parseInt(sha256(imageName).slice(0, 8), 16) % 100;
  return bucket < 80 ? "train" : bucket < 90 ? "val" : "test";
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
