import type { NewEvent } from '../../../schemas/events.ts';
import { BudgetLedger } from './budget.ts';
import type { CompiledPolicy } from './compiled-policy.ts';
import type { DeciderContext } from './context.ts';
import { StormLedger } from './storm.ts';
import type { CatalogueView } from './types.ts';

/**
 * What the decider remembers across identities, folded from its own events in decision order:
 * automatic-action budgets, and which identities each rule fired on (storms). Live and in replay it sees the same events in the same order, so it
 * holds the same numbers.
 */
export class DecisionLedger {
  readonly budget: BudgetLedger;
  readonly storms = new StormLedger();

  constructor(retainMs?: number) {
    this.budget = new BudgetLedger(retainMs);
  }

  record(event: NewEvent): void {
    // Most events of a run are detections, which neither ledger counts.
    if (event.type === 'DetectionReceived') return;
    this.budget.record(event);
    this.storms.record(event);
  }

  /**
   * Takes back an event recorded but never appended (its append failed, or its request failed as a
   * whole): its budget stamps and storm firings go, as if it had never been decided.
   */
  unrecord(event: NewEvent): void {
    this.budget.unrecord(event);
    this.storms.unrecord(event);
  }

  /** The context a decision reads, over this ledger. */
  context(policy: CompiledPolicy, catalogue: CatalogueView, paused = false): DeciderContext {
    return { policy, catalogue, budget: this.budget, storms: this.storms, paused };
  }
}
