/**
 * Which operations an augmented view may apply: part of the shard-list and shard-index formats, so it
 * lives here; what each recipe does is @capflow/ml `preprocess/augment-view.ts`. `mix` is what ingest
 * uses by default; the single-operation recipes exist to measure each operation alone
 * (docs/augmentation.md has the study).
 */
export const AUGMENT_RECIPES = ["mix", "lowres", "blur", "jpeg", "background", "geometry"] as const;
export type AugmentRecipe = (typeof AUGMENT_RECIPES)[number];
export const DEFAULT_AUGMENT_RECIPE: AugmentRecipe = "mix";
