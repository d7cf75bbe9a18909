import {
  asyncScheduler,
  catchError,
  concatMap,
  defer,
  EMPTY,
  filter,
  finalize,
  from,
  groupBy,
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
import type { DeciderInput } from './core/types.ts';
import type { DeciderEngine, DecisionResult } from './engine.ts';

export interface DeciderRequest {
  input: DeciderInput;
  resolve: (result: DecisionResult) => void;
  reject: (err: unknown) => void;
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
 * identity's inputs are decided strictly in order (concatMap) while identities proceed concurrently.
 * Errors go back to the requester; nothing is swallowed.
 */
export function runDeciderPipeline(
  engine: DeciderEngine,
  opts: PipelineOptions = {},
): {
  submit: (input: DeciderInput) => Promise<DecisionResult>;
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
  const busy = new Map<string, number>();
  const quietSince = new Map<string, number>();
  const arrive = (key: string) => busy.set(key, (busy.get(key) ?? 0) + 1);
  const leave = (key: string) => {
    busy.set(key, (busy.get(key) ?? 1) - 1);
    quietSince.set(key, scheduler.now());
  };
  const idle = (key: string) =>
    interval(idleGroupMs, scheduler).pipe(
      filter(() => (busy.get(key) ?? 0) === 0 && scheduler.now() - (quietSince.get(key) ?? 0) >= idleGroupMs),
      take(1),
      tap(() => {
        busy.delete(key);
        quietSince.delete(key);
      }),
    );

  const subscription = merge(requests$, ticks$)
    .pipe(
      map((req) => ({ req, key: keyOf(req) })),
      tap(({ key }) => arrive(key)),
      groupBy(({ key }) => key, { duration: (group) => idle(group.key) }),
      mergeMap((group) =>
        group.pipe(
          concatMap(({ req, key }) =>
            defer(() => engine.handle(req.input)).pipe(
              tap({ next: (result) => req.resolve(result) }),
              catchError((err: unknown) => {
                req.reject(err);
                return EMPTY;
              }),
              finalize(() => leave(key)),
            ),
          ),
        ),
      ),
    )
    .subscribe();

  return {
    submit: (input) =>
      new Promise<DecisionResult>((resolve, reject) => {
        if (subscription.closed) {
          reject(new Error('decider pipeline is stopped'));
          return;
        }
        requests$.next({ input, resolve, reject });
      }),
    subscription,
    stop: () => {
      requests$.complete();
      subscription.unsubscribe();
    },
  };
}
