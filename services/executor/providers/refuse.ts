import { RollbackRefusedError } from '../../../platform/errors.ts';
import type { ActionType } from '../../../schemas/events.ts';
import type { ActionCapability, Probe } from './port.ts';

/**
 * Refuses the rollback of an action the provider declares irreversible, naming its residue as the
 * reason: what a provider says it cannot undo, its revert never pretends to.
 */
export function refuseIrreversibleRollback(
  provider: string,
  action: ActionType,
  capabilities: Partial<Record<ActionType, ActionCapability>>,
): void {
  const cap = capabilities[action];
  if (cap?.reversibility === 'irreversible')
    throw new RollbackRefusedError({ provider, action, reason: cap.residue.join('; ') });
}

/**
 * The one probe of a provider whose verification is "the effect is in place now" (its isApplied
 * check run again), named by what it looked at and said of the identity's label.
 */
export function effectProbe(probe: string, label: string, ok: boolean): Probe[] {
  return [{ probe, ok, detail: `${label}: ${ok ? 'holds' : 'does not hold'}` }];
}
