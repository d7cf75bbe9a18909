import {
  asyncScheduler,
  filter,
  from,
  groupBy,
  ignoreElements,
  interval,
  map,
  merge,
  mergeMap,
  type SchedulerLike,
  Subject,
  type Subscription,
  take,
  tap,
} from 'rxjs';
import { identityKey } from '../../schemas/detection.ts';
import type { AppendUnit } from './append-unit.ts';
import type { DeciderInput } from './core/types.ts';
import type { DeciderEngine, DecisionResult } from './engine.ts';

interface DeciderRequest {
  input: DeciderInput;
  /** Set for inputs of a request appended as a whole (see AppendUnit). */
  unit?: AppendUnit;
  resolve: (result: DecisionResult) => void;
  reject: (err: unknown) => void;
}

interface Keyed extends DeciderRequest {
  key: string;
}

export interface PipelineOptions {
  /** Injected so tests and replay drive time; defaults to the wall clock at the edge. */
  scheduler?: SchedulerLike;
  /** How often due approvals are checked for expiry. */
  tickMs?: number;
  /** Identity groups with nothing queued are closed after this long idle, so memory follows the active set. */
  idleGroupMs?: number;
  onTickError?: (err: unknown) => void;
}

/**
 * RxJS plumbing around the engine: requests and ticks are merged, grouped by identity, and each
 * identity's inputs are decided strictly in order (a queue per identity group) while identities
 * proceed concurrently.
 * Errors go back to the requester; nothing is swallowed.
 */
export function runDeciderPipeline(
  engine: DeciderEngine,
  opts: PipelineOptions = {},
): {
  submit: (input: DeciderInput, unit?: AppendUnit) => Promise<DecisionResult>;
  subscription: Subscription;
  stop: () => void;
} {
  const scheduler = opts.scheduler ?? asyncScheduler;
  const requests$ = new Subject<DeciderRequest>();
  const tickMs = opts.tickMs ?? 5000;
  const idleGroupMs = opts.idleGroupMs ?? 60_000;
  const onTickError =
    opts.onTickError ??
    ((err: unknown) =>
      queueMicrotask(() => {
        throw err;
      }));

  const ticks$ = interval(tickMs, scheduler).pipe(
    mergeMap(() => from(engine.dueTicks(scheduler.now()))),
    map((input): DeciderRequest => ({ input, resolve: () => undefined, reject: onTickError })),
  );

  const keyOf = (r: DeciderRequest) =>
    identityKey(r.input.type === 'detection' ? r.input.detection.identity : r.input.identity);

  // A group may close only when its identity has nothing queued or in flight and has been quiet for
  // idleGroupMs: closing a busy group would let the identity's next input start a second, concurrent
  // group, and that identity's inputs would no longer be decided in order.
  interface Slot {
    busy: number;
    quietSince: number;
    /** Inputs waiting for the one in flight, in arrival order. */
    queue: Keyed[];
  }
  const slots = new WeakMap<object, Slot>();
  const slotOf = (group: object): Slot => {
    let slot = slots.get(group);
    if (!slot) {
      slot = { busy: 0, quietSince: scheduler.now(), queue: [] };
      slots.set(group, slot);
    }
    return slot;
  };
  const idle = (slot: Slot) =>
    interval(idleGroupMs, scheduler).pipe(
      filter(() => slot.busy === 0 && scheduler.now() - slot.quietSince >= idleGroupMs),
      take(1),
    );
  // One identity's inputs, strictly one after another. A plain queue rather than concatMap: concatMap
  // subscribes an inner observable per input, which cost more than the decision itself (issue note).
  // Never rejects: errors go back to the requester, so a group's stream never errors.
  const drain = async (slot: Slot): Promise<void> => {
    for (let req = slot.queue.shift(); req; req = slot.queue.shift()) {
      try {
        req.resolve(await engine.handle(req.input, req.key, req.unit));
      } catch (err) {
        req.reject(err);
      } finally {
        slot.busy -= 1;
        slot.quietSince = scheduler.now();
      }
    }
  };
  // `busy` counts the queued inputs and the one in flight: at 1, nothing else is running for this
  // identity and this input starts the drain; above 1, the running drain reaches it.
  const enqueue = (req: Keyed, slot: Slot): void => {
    slot.busy += 1;
    slot.queue.push(req);
    if (slot.busy === 1) void drain(slot);
  };

  const subscription = merge(requests$, ticks$)
    .pipe(
      map((req): Keyed => ({ ...req, key: keyOf(req) })),
      groupBy((req) => req.key, { duration: (group) => idle(slotOf(group)) }),
      mergeMap((group) => {
        const slot = slotOf(group);
        return group.pipe(
          // counted as the input enters its group, synchronously, before any idleness check can run
          tap((req) => enqueue(req, slot)),
          ignoreElements(),
        );
      }),
    )
    .subscribe();

  return {
    submit: (input, unit) =>
      new Promise<DecisionResult>((resolve, reject) => {
        if (subscription.closed) {
          reject(new Error('decider pipeline is stopped'));
          return;
        }
        requests$.next(unit ? { input, resolve, reject, unit } : { input, resolve, reject });
      }),
    subscription,
    stop: () => {
      requests$.complete();
      subscription.unsubscribe();
    },
  };
}
