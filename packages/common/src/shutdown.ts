import type { Logger } from "pino";

type Closer = { name: string; close: () => Promise<void> };

/**
 * Graceful shutdown: on SIGINT/SIGTERM run the closers in reverse order of registration (stop taking
 * jobs first, close connections last), bounded by a deadline after which the process exits anyway.
 */
export class Shutdown {
  private readonly closers: Closer[] = [];
  private running?: Promise<void>;

  constructor(
    private readonly log: Logger,
    private readonly deadlineMs: number,
  ) {}

  add(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  installSignalHandlers(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      this.log.info({ signal }, "shutting down");
      void this.run().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      const timer = setTimeout(() => {
        this.log.error({ deadlineMs: this.deadlineMs }, "shutdown deadline passed, exiting");
        process.exit(1);
      }, this.deadlineMs);
      timer.unref();
      let failed = false;
      for (const closer of [...this.closers].reverse()) {
        try {
          await closer.close();
        } catch (err) {
          failed = true;
          this.log.error({ err, closer: closer.name }, "error while shutting down");
        }
      }
      clearTimeout(timer);
      if (failed) throw new Error("shutdown finished with errors");
    })();
    return this.running;
  }
}
