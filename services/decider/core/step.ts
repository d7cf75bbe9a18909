import type { NewEvent } from '../../../schemas/events.ts';
import type { CompiledPolicy } from './compiled-policy.ts';
import type { DeciderContext } from './context.ts';
import { decide, nextDeadline } from './decide.ts';
import { evolve } from './evolve.ts';
import type { DeciderInput, IdentityState } from './types.ts';

/** Folds decider events into what spans identities (budgets, storms). */
export interface DecisionRecorder {
  record(event: NewEvent): void;
}

/** What evolve may forget under a policy; omit to remember all evidence (decisions are the same). */
export type Forgetting = Pick<CompiledPolicy, 'maxWindowMs' | 'evidenceFloor'>;

export interface StepResult {
  events: NewEvent[];
  /** The identity's earliest pending-approval deadline after the decision, or null. */
  deadline: number | null;
}

/** Records one decision's events in the cross-identity ledger only (the identity state is re-read elsewhere). */
export function recordDecision(ledger: DecisionRecorder, events: readonly NewEvent[]): void {
  for (let i = 0; i < events.length; i++) ledger.record(events[i]!);
}

/** For a decision whose events the ledger already holds (recorded when decided, before its append). */
export const ALREADY_RECORDED: DecisionRecorder = { record() {} };

/**
 * Folds one decision into the ledger and the identity's state, in that order per decision: every
 * event reaches `observe` (with the state as it was before the decision) and the ledger, then the
 * state. Returns the identity's next deadline.
 */
export function applyDecision(
  state: IdentityState,
  events: readonly NewEvent[],
  ledger: DecisionRecorder,
  forget?: Forgetting,
  observe?: (e: NewEvent) => void,
): number | null {
  const n = events.length;
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    if (observe) observe(e);
    ledger.record(e);
  }
  if (forget) for (let i = 0; i < n; i++) evolve(state, events[i]!, forget.maxWindowMs, forget.evidenceFloor);
  else for (let i = 0; i < n; i++) evolve(state, events[i]!);
  return nextDeadline(state);
}

/**
 * The one decider step: decide, record in the ledger, evolve, next deadline. The engine splits it
 * around its durable append (decide, append, then applyDecision); replay, the test kit and the bench
 * call it whole.
 */
export function step(
  state: IdentityState,
  input: DeciderInput,
  ctx: DeciderContext,
  ledger: DecisionRecorder,
  forget?: Forgetting,
  observe?: (e: NewEvent) => void,
): StepResult {
  const events = decide(state, input, ctx);
  if (events.length === 0) return { events, deadline: nextDeadline(state) };
  return { events, deadline: applyDecision(state, events, ledger, forget, observe) };
}
