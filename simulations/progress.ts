/** Where CLI output goes: process.stdout/stderr or a test double. */
export interface Out {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

/**
 * A one-line progress bar on stderr, only on a terminal and only once a run has taken more than a
 * second (short runs stay quiet, pipes and CI logs stay clean). Redraws at most ten times a second.
 * Uses the wall clock for display only; nothing it shows reaches a report.
 */
export function progressLine(out: Out, label: string, unit = 'inputs', delayMs = 1000): Progress {
  if (!out.isTTY) return { update: () => undefined, done: () => undefined };
  const started = performance.now();
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = performance.now();
      if (now - started < delayMs || (now - last < 100 && done < total)) return;
      last = now;
      shown = true;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      const secs = ((now - started) / 1000).toFixed(1);
      out.write(
        `\r\x1b[2K${label} ${bar} ${(frac * 100).toFixed(0).padStart(3)}%  ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${unit}  ${secs}s`,
      );
    },
    done() {
      if (shown) out.write('\r\x1b[2K');
    },
  };
}
