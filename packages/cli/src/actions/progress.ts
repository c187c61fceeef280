import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, total?: number): void;
  stop(): void;
}

/**
 * A progress bar with rate and ETA on a terminal; plain text lines every few seconds otherwise
 * (CI logs, files).
 */
export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {rate}/s | ETA {eta_formatted}`,
        stream,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    let running = false;
    return {
      update(done, total) {
        const rate = (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
        if (!running) {
          bar.start(total ?? done, done, { rate });
          running = true;
        }
        if (total !== undefined && total >= done) bar.setTotal(total);
        else if (done > bar.getTotal()) bar.setTotal(done);
        bar.update(done, { rate });
      },
      stop: () => running && bar.stop(),
    };
  }
  let last = 0;
  const started = Date.now();
  return {
    update(done, total) {
      if (Date.now() - last < 5_000 && done !== total) return;
      last = Date.now();
      const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
      stream.write(`   ${label}: ${done}${total !== undefined ? `/${total}` : ""} (${rate.toFixed(1)}/s)\n`);
    },
    stop() {},
  };
}
