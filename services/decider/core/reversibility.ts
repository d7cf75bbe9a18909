import {
  type ProposalReversibility,
  type ProviderCapabilities,
  reversibilityFor,
} from '../../../schemas/capabilities.ts';
import type { ActionType, ApprovalMode, GuardNote } from '../../../schemas/events.ts';
import type { Stage } from '../policy/schema.ts';

/** What the provider acting on `identityProvider` can undo of `action` (undefined: not known). */
export function proposalReversibility(
  caps: ProviderCapabilities | undefined,
  identityProvider: string,
  action: ActionType,
): ProposalReversibility | undefined {
  return reversibilityFor(caps, identityProvider, action) ?? undefined;
}

/**
 * An action the provider cannot undo runs automatically only where the rule's stage says
 * `irreversible: accept`; otherwise an analyst decides, with the provider's own words for why.
 */
export function irreversibleGuard(
  rev: ProposalReversibility | undefined,
  stage: Pick<Stage, 'irreversible'>,
  mode: ApprovalMode,
): GuardNote | null {
  if (mode !== 'auto' || rev?.reversibility !== 'irreversible' || stage.irreversible === 'accept')
    return null;
  return {
    guard: 'irreversible',
    effect: 'approval auto -> analyst',
    reason: `${rev.type} cannot undo it (${rev.residue[0] ?? 'irreversible'}); the rule does not say irreversible: accept`,
  };
}
