import {
  EMPTY,
  Subject,
  type SchedulerLike,
  type Subscription,
  asyncScheduler,
  catchError,
  concatMap,
  defer,
  from,
  groupBy,
  interval,
  map,
  merge,
  mergeMap,
  tap,
  timer,
} from 'rxjs';
import { identityKey } from '../../schemas/detection.ts';
import type { DeciderInput } from './core/types.ts';
import type { DecisionResult, DeciderEngine } from './engine.ts';

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
  /** Idle identity groups are closed after this long, so memory follows the active set. */
  idleGroupMs?: number;
  onTickError?: (err: unknown) => void;
}

/**
 * RxJS plumbing around the engine: requests and ticks are merged, grouped by identity, and each
 * identity's inputs are decided strictly in order (concatMap) while identities proceed concurrently.
 * Errors go back to the requester; nothing is swallowed.
 */
export function runDeciderPipeline(engine: DeciderEngine, opts: PipelineOptions = {}): {
  submit: (input: DeciderInput) => Promise<DecisionResult>;
  subscription: Subscription;
  stop: () => void;
} {
  const scheduler = opts.scheduler ?? asyncScheduler;
  const requests$ = new Subject<DeciderRequest>();
  const tickMs = opts.tickMs ?? 5000;
  const idleGroupMs = opts.idleGroupMs ?? 60_000;
  const onTickError = opts.onTickError ?? ((err: unknown) => queueMicrotask(() => { throw err; }));

  const ticks$ = interval(tickMs, scheduler).pipe(
    mergeMap(() => from(engine.dueTicks(scheduler.now()))),
    map((input): DeciderRequest => ({ input, resolve: () => undefined, reject: onTickError })),
  );

  const keyOf = (r: DeciderRequest) =>
    identityKey(r.input.type === 'detection' ? r.input.detection.identity : r.input.identity);

  const subscription = merge(requests$, ticks$)
    .pipe(
      groupBy(keyOf, { duration: () => timer(idleGroupMs, scheduler) }),
      mergeMap((group) =>
        group.pipe(
          concatMap((req) =>
            defer(() => engine.handle(req.input)).pipe(
              tap({ next: (result) => req.resolve(result) }),
              catchError((err: unknown) => {
                req.reject(err);
                return EMPTY;
              }),
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
