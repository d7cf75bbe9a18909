import type { NewEvent } from '../../../schemas/events.ts';
import { BudgetLedger } from './budget.ts';
import type { CompiledPolicy } from './compiled-policy.ts';
import type { DeciderContext } from './context.ts';
import type { CatalogueView } from './types.ts';

/**
 * What the decider remembers across identities, folded from its own events in decision order:
 * automatic-action budgets. Live and in replay it sees the same events in the same order, so it
 * holds the same numbers.
 */
export class DecisionLedger {
  readonly budget: BudgetLedger;

  constructor(retainMs?: number) {
    this.budget = new BudgetLedger(retainMs);
  }

  record(event: NewEvent): void {
    this.budget.record(event);
  }

  /** The context a decision reads, over this ledger. */
  context(policy: CompiledPolicy, catalogue: CatalogueView, paused = false): DeciderContext {
    return { policy, catalogue, budget: this.budget, paused };
  }
}
