import type { Logger } from 'pino';
import type { ChainHead, ChainStatus } from '../eventstore/chain-guard.ts';
import type { Witness } from './port.ts';

/**
 * Publishes the store's verified chain head to a witness at an interval (and once more when it
 * stops), only when the head moved, and never a head the store's own check found broken. A witness
 * that is down is retried at the next interval; the failures are logged and counted.
 */
export interface Anchoring {
  /** Publishes now if the head moved; resolves when the witness has it. */
  flush(): Promise<void>;
  readonly published: number;
  readonly failures: number;
  stop(): Promise<void>;
}

export function startAnchoring(opts: {
  witness: Witness;
  store: string;
  status: () => ChainStatus;
  intervalMs: number;
  log?: Logger;
  now?: () => Date;
}): Anchoring {
  const now = opts.now ?? (() => new Date());
  let last: ChainHead | null = null;
  let published = 0;
  let failures = 0;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const publishOnce = async (): Promise<void> => {
    const status = opts.status();
    if (!status.ok || !status.head) return;
    const head = status.head;
    if (last && last.position === head.position && last.hash === head.hash) return;
    try {
      await opts.witness.publish({
        store: opts.store,
        position: head.position,
        hash: head.hash,
        at: now().toISOString(),
      });
      last = head;
      published += 1;
    } catch (err) {
      failures += 1;
      opts.log?.warn(
        { err, witness: opts.witness.name },
        'chain head not anchored; retried at the next interval',
      );
    }
  };
  const flush = (): Promise<void> => {
    running = running.then(publishOnce);
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void flush();
  }, opts.intervalMs);
  timer.unref();
  void flush();

  return {
    flush,
    get published() {
      return published;
    },
    get failures() {
      return failures;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await flush();
      await opts.witness.close();
    },
  };
}
