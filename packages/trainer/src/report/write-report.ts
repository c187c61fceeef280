import fs from "node:fs/promises";
import path from "node:path";
import { getJson, keys, NotFoundError, type ObjectStore } from "@capflow/common";
import type { RunResult } from "../run/train-run.ts";
import { renderReport, type ReportOptions } from "./render-report.ts";

export const reportKey = (runId: string) => `${keys.runPrefix(runId)}report.html`;

/**
 * Reads a finished run (`runs/<run>/result.json`, the best epoch's `config.json`, the test images)
 * from the store, renders the report, writes it to `runs/<run>/report.html` and, if asked, to a
 * local file. Returns the store key and the local path.
 */
export async function writeReport(
  store: ObjectStore,
  runId: string,
  opts: ReportOptions & { outFile?: string } = {},
): Promise<{ key: string; file?: string; bytes: number }> {
  let result: RunResult;
  try {
    result = await getJson<RunResult>(store, `${keys.runPrefix(runId)}result.json`);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new Error(`run "${runId}" has no result.json yet: it is still training, failed, or never ran`, {
        cause: err,
      });
    }
    throw err;
  }
  const config = await getJson<Record<string, unknown>>(
    store,
    `${keys.runEpoch(runId, result.best.epoch)}config.json`,
  ).catch((err: unknown) => {
    if (err instanceof NotFoundError) return { note: `checkpoint of epoch ${result.best.epoch} not found` };
    throw err;
  });
  const images = new Map<string, Buffer>();
  for (const s of result.test.samples.slice(0, opts.maxImages ?? 48)) {
    if (images.has(s.key)) continue;
    try {
      images.set(s.key, await store.get(s.key));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  const html = renderReport(result, config, images, opts);
  const key = reportKey(runId);
  await store.put(key, html, { contentType: "text/html; charset=utf-8" });
  let file: string | undefined;
  if (opts.outFile) {
    file = path.resolve(opts.outFile);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, html);
  }
  return { key, ...(file ? { file } : {}), bytes: Buffer.byteLength(html) };
}
