/**
 * A counting limit that never queues: `tryTake` returns a release function, or undefined when every
 * slot is taken (the caller answers 429 at once rather than hold the request, and its body, waiting).
 * Release is idempotent, so it can be wired to several "done" events.
 */
export class Slots {
  private taken = 0;

  constructor(readonly size: number) {}

  get inUse(): number {
    return this.taken;
  }

  tryTake(): (() => void) | undefined {
    if (this.taken >= this.size) return undefined;
    this.taken++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.taken--;
    };
  }
}
