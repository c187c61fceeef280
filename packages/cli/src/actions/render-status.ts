import type { FeatureProgress, PipelineStatus } from "@capflow/api";

/** `capflow status` as text: one block per dataset, then runs, models and bulk caption jobs. */
export function renderStatus(s: PipelineStatus): string {
  const out: string[] = [];
  const w = s.workers;
  out.push(
    `workers: features ${w.features}, training ${w.training}, captions ${w.captions}, caption-bulk ${w["caption-bulk"]}, ingest ${w.ingest}` +
      (s.encoder ? `   encoder ${s.encoder}` : "   (no feature worker has announced its encoder yet)"),
  );
  out.push("", s.datasets.length ? "datasets" : "datasets: none ingested (capflow ingest <dir>)");
  for (const d of s.datasets) {
    out.push(
      `  ${d.name} (${d.format}): ${d.images} images, ${d.captions} captions; ` +
        `train ${d.splits.train}, val ${d.splits.val}, test ${d.splits.test}`,
    );
    if (!d.features.length) out.push("    features: waiting for a feature worker to announce its encoder");
    for (const f of d.features) out.push(...renderFeatures(d.name, f));
  }
  out.push("", s.runs.length ? "training runs" : "training runs: none (capflow train --dataset <name>)");
  for (const r of s.runs) {
    const scores = r.scores
      ? `loss ${r.scores.trainLoss.toFixed(3)}/${r.scores.valLoss.toFixed(3)} (train/val), BLEU-4 ${r.scores.bleu4.toFixed(3)}, CIDEr ${r.scores.cider.toFixed(3)}`
      : "no epoch finished yet";
    out.push(
      `  ${r.runId}${r.dataset ? ` on ${r.dataset}` : ""}: epoch ${r.epoch}${r.epochs ? `/${r.epochs}` : ""}` +
        `${r.finished ? " (finished)" : ""}, ${scores}` +
        (r.publishedAs.length ? `; published as ${r.publishedAs.join(", ")}` : "") +
        (r.report ? `; report ${r.report}` : ""),
    );
  }
  if (s.models.length) {
    out.push("", "published models");
    for (const m of s.models)
      out.push(
        `  ${m.name}: ${m.runId} epoch ${m.epoch}, CIDEr ${m.cider.toFixed(3)}, published ${m.publishedAt}`,
      );
  }
  out.push("", s.batches.length ? "bulk caption jobs (newest first)" : "bulk caption jobs: none");
  for (const b of s.batches) {
    const sh = b.shards;
    out.push(
      `  ${b.id} ${b.dataset}${b.split ? `/${b.split}` : ""} with ${b.model}: ${b.status}, ` +
        `${sh.done}/${sh.total} shards (${sh.active} running, ${sh.waiting} waiting, ${sh.failed} failed), ` +
        `${b.captioned}/${b.images} images`,
    );
    for (const f of b.failures.slice(0, 3)) out.push(`    failed ${f.shardId}: ${f.reason}`);
  }
  return `${out.join("\n")}\n`;
}

function renderFeatures(dataset: string, f: FeatureProgress & { current: boolean }): string[] {
  const s = f.shards;
  const lines = [
    `    features ${f.encoderId}${f.current ? " (current)" : ""}: ${s.done}/${s.total} shards done, ` +
      `${s.active} running, ${s.queued} queued, ${s.failed} failed, ${s.missing} not queued` +
      (f.etaSeconds !== undefined && s.queued + s.active > 0 ? `; ETA ${formatSeconds(f.etaSeconds)}` : ""),
  ];
  const q = Object.entries(f.quarantine);
  lines.push(
    `      ${f.vectors} vectors; quarantined ${q.length ? q.map(([r, n]) => `${r} ${n}`).join(", ") : "none"}`,
  );
  for (const fail of f.failures.slice(0, 3)) lines.push(`      failed ${fail.shardId}: ${fail.reason}`);
  if (s.failed) lines.push(`      retry: capflow queue retry-failed features`);
  if (s.missing) lines.push(`      re-enqueue: capflow reconcile ${dataset}`);
  return lines;
}

export function formatSeconds(sec: number): string {
  if (sec < 90) return `${Math.round(sec)} s`;
  if (sec < 5400) return `${Math.round(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}
