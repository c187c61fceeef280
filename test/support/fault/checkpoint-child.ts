// Test child for docs/reliability.md test 12: a "trainer" that resumes at the newest complete checkpoint
// and then saves one checkpoint per epoch, forever, until the parent SIGKILLs it mid-upload.
// Weights hold the epoch number, so a torn checkpoint (files from two epochs) is visible. It prints
// `saving N` / `saved N` around each save, so the parent knows whether a kill landed inside one.
// argv: <store JSON: {"kind":"local","dir":...} | {"kind":"s3",...S3StoreOptions}> <runId>
import { LocalStore, S3Store, type ObjectStore } from "@capflow/common";
import { latestCheckpoint, saveCheckpoint } from "@capflow/trainer";

const [storeJson, runId] = process.argv.slice(2);
const spec = JSON.parse(storeJson!) as
  { kind: "local"; dir: string } | ({ kind: "s3" } & ConstructorParameters<typeof S3Store>[0]);
const store: ObjectStore = spec.kind === "local" ? new LocalStore(spec.dir) : new S3Store(spec);
const weight = (name: string, epoch: number, n: number) => ({
  name,
  shape: [n],
  data: new Float32Array(n).fill(epoch),
});

const latest = await latestCheckpoint(store, runId!);
process.stdout.write("ready\n");
for (let epoch = (latest?.epoch ?? 0) + 1; ; epoch++) {
  process.stdout.write(`saving ${epoch}\n`);
  await saveCheckpoint(store, {
    runId: runId!,
    epoch,
    weights: [weight("dense/kernel", epoch, 250_000), weight("dense/bias", epoch, 1000)],
    optimizer: {
      iterations: epoch * 10,
      beta1Power: 0.9 ** (epoch * 10),
      beta2Power: 0.999 ** (epoch * 10),
      slots: [weight("dense/kernel/m", epoch, 250_000), weight("dense/kernel/v", epoch, 250_000)],
    },
    vocab: { textVersion: 1, minCount: 1, maxSize: null, tokens: ["<pad>", `e${epoch}`], counts: [0, epoch] },
    config: { epoch },
    history: [],
  });
  process.stdout.write(`saved ${epoch}\n`);
}
