import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, getJson, keys, readDatasetInfo, S3Store } from "@capflow/common";
import { drawImage, writeJsonlDataset } from "../support/images.ts";
import { checkLedger } from "../support/fault/ledger.ts";
import { productionTree, startRole, type Role } from "../support/production-tree.ts";
import { freshPrefix, redisUrl, s3Env, s3StoreOptions, tempDir } from "../support/services.ts";
import { waitFor } from "../support/wait-for.ts";

/**
 * The pipeline as it runs on many machines that share nothing but Redis and the object store
 * (issue 14, "many nodes"): three feature workers, a trainer and a caption worker, and the ingest,
 * train and caption commands as clients, each its own process with its own HOME (so its own encoder
 * cache), run from a production-only tree that no node can write to, as the images' user (uid 10001)
 * when the test runs as root, against the S3-protocol server only. A hidden reliance on a shared
 * local folder (the project's `.capflow`, the checkout, a cache another process filled) or on root
 * fails here: nothing of the sort exists for these processes.
 */

const IMAGES = 24; // + 1 truncated file that the encoder quarantines
const SHARD_SIZE = 2;
/** The images' USER (deploy/docker); used when the test can switch users (runs as root). */
const IMAGE_USER = { uid: 10001, gid: 10001 };
const asRoot = process.getuid?.() === 0;
const user = asRoot ? IMAGE_USER : undefined;

let work = "";
let app = "";
let datasetDir = "";
const roles: Array<Role & { name: string }> = [];
const s3 = s3StoreOptions();
const store = new S3Store(s3);
const prefix = freshPrefix();

/** A folder only this node's user may use: its HOME. */
async function nodeHome(name: string): Promise<string> {
  await fsp.mkdir(path.join(work, "homes"), { recursive: true, mode: 0o755 });
  const home = path.join(work, "homes", name);
  await fsp.mkdir(home, { mode: 0o700 });
  if (user) await fsp.chown(home, user.uid, user.gid);
  return home;
}

/** Everything a node is told: Redis, the store and its own HOME. No CAPFLOW_HOME, no shared folder. */
function nodeEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    NODE_ENV: "production",
    CAPFLOW_LOG_LEVEL: "warn",
    CAPFLOW_REDIS_URL: redisUrl(),
    CAPFLOW_QUEUE_PREFIX: prefix,
    ...s3Env(s3),
    ...extra,
  };
}

async function startNode(name: string, args: string[], extra: Record<string, string> = {}) {
  const home = await nodeHome(name);
  const port = await freePort();
  const role = startRole(app, args, nodeEnv(home, { CAPFLOW_OPS_PORT: String(port), ...extra }), { user });
  const node = { ...role, name, home, port };
  roles.push(node);
  return node;
}

/** A command run to its end on a node of its own (a client machine); its stdout on success. */
async function runClient(name: string, args: string[]): Promise<string> {
  const home = await nodeHome(name);
  const role = startRole(app, args, nodeEnv(home), { user });
  roles.push({ ...role, name });
  const code = await role.exited;
  if (code !== 0) throw new Error(`capflow ${args.join(" ")} exited ${code}:\n${role.output()}`);
  return role.stdout();
}

async function ready(node: { name: string; port: number; child: Role["child"]; output: () => string }) {
  await waitFor(
    `${node.name} ready`,
    async () => {
      if (node.child.exitCode !== null) throw new Error(`${node.name} exited ${node.child.exitCode}`);
      return (await fetch(`http://127.0.0.1:${node.port}/readyz`).catch(() => undefined))?.ok;
    },
    { timeoutMs: 300_000, everyMs: 500 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${node.output()}`);
  });
}

/** Shards a feature node finished, from its own /metrics. */
async function shardsDone(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^capflow_feature_shards_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

beforeAll(async () => {
  ({ work, app } = await productionTree("many-nodes"));
  // The project folder is read-only for every node (root-owned when the nodes run as uid 10001;
  // write bits removed for the case where the test itself is not root).
  if (!asRoot) await fsp.chmod(app, 0o555);
  datasetDir = await writeJsonlDataset(await tempDir("nodes-ds"), IMAGES, {
    "truncated.png": (await drawImage(4242)).subarray(0, 200),
  });
  await fsp.chmod(datasetDir, 0o755);
}, 300_000);

afterAll(async () => {
  for (const r of roles)
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
  if (!asRoot && app) await fsp.chmod(app, 0o755);
  if (work) await fsp.rm(work, { recursive: true, force: true });
  if (datasetDir) await fsp.rm(datasetDir, { recursive: true, force: true });
});

describe("many nodes: nothing shared but Redis and the S3 store", () => {
  it("runs ingest → 3 feature workers → trainer → caption worker with a clean ledger, each node on its own", async () => {
    const features = await Promise.all(
      [1, 2, 3].map((i) =>
        startNode(`features-${i}`, ["worker", "features"], {
          CAPFLOW_FEATURE_CONCURRENCY: "1",
          CAPFLOW_FEATURE_BATCH: "2",
        }),
      ),
    );
    const trainer = await startNode("trainer", ["worker", "training"]);
    const captions = await startNode("captions", ["worker", "captions"]);
    // Every node converts the encoder into its own cache before it is ready; then the work is spread.
    for (const node of [...features, trainer, captions]) await ready(node);
    // Ran as the image's user, so the project folder cannot be written, let alone shared.
    if (user) for (const node of features) expect(fs.statSync(node.home).uid).toBe(user.uid);

    const ingested = JSON.parse(
      await runClient("ingest", [
        "ingest",
        datasetDir,
        "-d",
        "drawn",
        "-f",
        "jsonl-folder",
        "--shard-size",
        String(SHARD_SIZE),
        "--on-error",
        "fail",
        "--json",
      ]),
    ) as { images: number };
    expect(ingested.images).toBe(IMAGES + 1);

    const encoderId = (await getJson<{ id: string }>(store, "encoders/current.json")).id;
    const { shards } = await readDatasetInfo(store, "drawn");
    await waitFor(
      `features of ${shards.length} shards`,
      async () => {
        for (const s of shards)
          if (!(await store.head(keys.featureIndex(encoderId, "drawn", s)))) return false;
        return true;
      },
      { timeoutMs: 300_000, everyMs: 500 },
    );
    const perNode = await Promise.all(features.map((n) => shardsDone(n.port)));
    console.log(
      `[many-nodes] ${shards.length} shards done by the three feature nodes: ${perNode.join(", ")}`,
    );
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(shards.length);
    // Work really was spread over machines (each node takes one shard at a time).
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    // Each node built its own encoder from the package's weights, in its own HOME.
    for (const node of features) {
      const cached = path.join(node.home, ".cache", "capflow", "encoders", `${encoderId}.onnx`);
      expect(fs.existsSync(cached), `${node.name}: ${cached}`).toBe(true);
      if (user) expect(fs.statSync(cached).uid).toBe(user.uid);
    }

    await runClient("train", [
      "train",
      "-d",
      "drawn",
      "-e",
      "1",
      "--run-id",
      "nodes",
      "--units",
      "32",
      "--embed-dim",
      "16",
      "--batch-size",
      "16",
      "--learning-rate",
      "0.01",
      "--publish-as",
      "default",
    ]);
    expect(await store.head(keys.modelPointer("default"))).toBeTruthy();

    const picture = path.join(datasetDir, "img", "0000.png");
    const single = JSON.parse((await runClient("caption", ["caption", "--json", picture])).trim()) as {
      caption: string;
    };
    expect(single.caption.length).toBeGreaterThan(0);
    const bulkLines = (await runClient("bulk", ["caption", "--bulk", "drawn"]))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { caption?: string });
    expect(bulkLines.filter((l) => l.caption).length).toBe(IMAGES);

    const ledger = await checkLedger(store, "drawn", encoderId);
    console.log(
      `[many-nodes] ingested=${ledger.ingested} vectors=${ledger.vectors} quarantined=${ledger.quarantined} ` +
        `lost=${ledger.missing.length} as uid ${user?.uid ?? process.getuid?.()}; caption "${single.caption}"`,
    );
    expect(ledger.ingested).toBe(IMAGES + 1);
    expect(ledger.vectors).toBe(IMAGES);
    expect(ledger.quarantined).toBe(1);
    expect(ledger.missing).toEqual([]);
    expect(ledger.twice).toEqual([]);
    expect(ledger.badVectors).toEqual([]);

    // Nothing was refused on the way, not even where a node warns and goes on (a cache it could not
    // write is converted again at every start).
    for (const r of roles) expect(r.all(), r.name).not.toMatch(/EACCES|EPERM|EROFS|read-only file system/i);

    // The nodes stop cleanly on SIGTERM, as a rolling update stops them.
    for (const node of [...features, trainer, captions]) {
      node.child.kill("SIGTERM");
      expect(await node.exited, `${node.name}: ${node.output()}`).toBe(0);
    }
  }, 900_000);
});
