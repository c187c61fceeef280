import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { QUEUE_NAMES } from "@capflow/common";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const doc = fs.readFileSync(path.join(ROOT, "docs/architecture.md"), "utf8");

/** Rows of the "Queues" table: queue name → producer and consumer files. */
function queueTable(): Map<string, { producers: string[]; consumers: string[] }> {
  const section = doc.slice(doc.indexOf("## Queues"), doc.indexOf("## The data path"));
  const rows = new Map<string, { producers: string[]; consumers: string[] }>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const queue = /^`([\w-]+)`$/.exec(cells[1] ?? "")?.[1];
    if (!queue) continue;
    const files = (cell: string | undefined) =>
      [...(cell ?? "").matchAll(/`([^`]+\.ts)`/g)].map((m) => m[1]!);
    rows.set(queue, { producers: files(cells[3]), consumers: files(cells[4]) });
  }
  return rows;
}

const source = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

describe("docs/architecture.md", () => {
  const table = queueTable();

  it("has one row per queue of the job catalog", () => {
    expect([...table.keys()].sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it.each(QUEUE_NAMES)("names a producer and a consumer of %s that really are", (queue) => {
    const row = table.get(queue);
    expect(row?.producers.length).toBeGreaterThan(0);
    expect(row?.consumers.length).toBeGreaterThan(0);
    for (const file of row!.producers) expect(source(file), file).toContain(`createQueue("${queue}"`);
    for (const file of row!.consumers)
      expect(source(file), file).toMatch(new RegExp(`createWorker\\(\\s*"${queue}"`));
  });

  it("names only files that exist", () => {
    const named = [...doc.matchAll(/`(packages\/[\w./-]+\.ts)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((f) => !fs.existsSync(path.join(ROOT, f)))).toEqual([]);
  });
});
