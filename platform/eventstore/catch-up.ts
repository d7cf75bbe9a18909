import type { RecordedEvent } from '../../schemas/events.ts';
import type { EventHandler, ReadAllOptions, SubscribeOptions, Subscription } from './port.ts';

/**
 * A catch-up subscription over any store that can page readAll and signal new appends:
 * pages through history, then waits for a signal (same process) or a poll tick (other writers,
 * e.g. several processes on one SQLite file), and never skips or reorders an event.
 */
export function catchUpSubscription(
  readAll: (opts: ReadAllOptions) => Promise<RecordedEvent[]>,
  waitForAppend: (timeoutMs: number) => Promise<void>,
  opts: SubscribeOptions & { pollMs?: number },
  handler: EventHandler,
): Subscription {
  let position = opts.after ?? 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const pageSize = opts.pageSize ?? 1000;
  const pollMs = opts.pollMs ?? 100;

  const loop = async (): Promise<void> => {
    let live = false;
    while (!stopped) {
      const page = await readAll({
        after: position,
        limit: pageSize,
        ...(opts.types ? { types: opts.types } : {}),
      });
      for (const event of page) {
        if (stopped) return;
        await handler(event);
        position = event.position;
      }
      if (page.length < pageSize) {
        if (!live) {
          live = true;
          opts.onLive?.();
        }
        if (stopped) return;
        await Promise.race([
          waitForAppend(pollMs),
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
        ]);
      }
    }
  };

  const done = loop().catch((err: unknown) => {
    stopped = true;
    if (opts.onError) opts.onError(err);
    else throw err;
  });

  return {
    get position() {
      return position;
    },
    async stop() {
      stopped = true;
      wake?.();
      await done.catch(() => undefined);
    },
    done: done.then(() => undefined),
  };
}
