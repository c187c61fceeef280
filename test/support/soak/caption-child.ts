// The caption path of the memory soak (docs/reliability.md test 14): the real caption worker process
// (`capflow worker captions`'s main(): env parsing, Redis, store, encoder, published model with hot
// reload, BullMQ worker, ops server), configured through the environment like in production, plus a
// sampler on stdin. The parent feeds jobs in waves and, when a wave has finished (nothing in
// flight), writes `sample <jobs done>`; this process answers one `{"soak":"sample",...}` line.
// tf here is the worker's own tfjs instance: loadTf() returns the one promise main() loaded.
import { createInterface } from "node:readline";
import { loadTf } from "@capflow/ml";
import { main } from "@capflow/caption-worker";
import { emit, takeSample } from "./memory.ts";

await main();
const { tf, backend } = await loadTf();
emit({ soak: "ready", backend, pid: process.pid });
for await (const line of createInterface({ input: process.stdin })) {
  const m = /^sample (\d+)$/.exec(line.trim());
  if (m) emit({ soak: "sample", ...takeSample(Number(m[1]), tf) });
}
