import { describe, expect, it } from "vitest";
import { IsolationGate } from "./isolation-gate.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("IsolationGate", () => {
  it("lets batch phases run side by side", async () => {
    const gate = new IsolationGate();
    const a = deferred();
    const b = deferred();
    const pa = gate.runShared(() => a.promise);
    const pb = gate.runShared(() => b.promise);
    await tick();
    expect(gate.state.shared).toBe(2);
    a.resolve();
    b.resolve();
    await Promise.all([pa, pb]);
    expect(gate.state).toEqual({ shared: 0, exclusive: false, exclusiveWaiting: 0 });
  });

  it("runs an isolated image with nothing else in flight, and holds new batches behind it", async () => {
    const gate = new IsolationGate();
    const log: string[] = [];
    const batch1 = deferred();
    const p1 = gate.runShared(async () => {
      log.push("batch1 start");
      await batch1.promise;
      log.push("batch1 end");
    });
    await tick();
    const alone = gate.runExclusive(async () => {
      log.push(`alone start (shared ${gate.state.shared})`);
      await tick();
      log.push("alone end");
    });
    await tick();
    // A shard that arrives while the isolation waits queues behind it (writer preference).
    const p2 = gate.runShared(async () => {
      log.push("batch2 start");
    });
    await tick();
    expect(log).toEqual(["batch1 start"]);
    batch1.resolve();
    await Promise.all([p1, alone, p2]);
    expect(log).toEqual([
      "batch1 start",
      "batch1 end",
      "alone start (shared 0)",
      "alone end",
      "batch2 start",
    ]);
  });

  it("runs isolations one after the other and releases on a throw", async () => {
    const gate = new IsolationGate();
    const order: string[] = [];
    const first = gate.runExclusive(async () => {
      order.push("first");
      await tick();
      throw new Error("store down");
    });
    const second = gate.runExclusive(async () => {
      order.push(`second (exclusive before: ${String(order.length)})`);
    });
    await expect(first).rejects.toThrow("store down");
    await second;
    expect(order).toEqual(["first", "second (exclusive before: 1)"]);
    expect(gate.state).toEqual({ shared: 0, exclusive: false, exclusiveWaiting: 0 });
  });
});
