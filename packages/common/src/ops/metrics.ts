import client from "prom-client";

/**
 * One registry per process. Names follow `capflow_<role>_<what>_<unit>`; labels are bounded
 * (status, reason, queue, runtime): never image ids, URLs or user ids.
 */
export const registry = new client.Registry();
let defaultsOn = false;

export function enableDefaultMetrics(role: string): void {
  if (defaultsOn) return;
  defaultsOn = true;
  registry.setDefaultLabels({ role });
  // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...), no prefix: the
  // usual Node.js dashboards and alerts then match capflow processes as they are.
  client.collectDefaultMetrics({ register: registry });
}

export const metrics = {
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []) {
    return (
      (registry.getSingleMetric(name) as client.Counter<L> | undefined) ??
      new client.Counter<L>({ name, help, labelNames, registers: [registry] })
    );
  },
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    collect?: client.GaugeConfiguration<L>["collect"],
  ) {
    return (
      (registry.getSingleMetric(name) as client.Gauge<L> | undefined) ??
      new client.Gauge<L>({ name, help, labelNames, registers: [registry], ...(collect ? { collect } : {}) })
    );
  },
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]) {
    return (
      (registry.getSingleMetric(name) as client.Histogram<L> | undefined) ??
      new client.Histogram<L>({
        name,
        help,
        labelNames,
        registers: [registry],
        ...(buckets ? { buckets } : {}),
      })
    );
  },
};

/** Static facts about the process (runtime, backend, version) as an info-style gauge set to 1. */
export function setBuildInfo(labels: Record<string, string>): void {
  const names = Object.keys(labels).sort();
  const g = metrics.gauge(
    "capflow_build_info",
    "Process facts: role, compute runtime and backend, version",
    names,
  );
  g.set(labels, 1);
}
