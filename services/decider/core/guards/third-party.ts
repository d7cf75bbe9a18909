import type { ActionType } from '../../../../schemas/events.ts';
import type { Guard } from './types.ts';

/** Actions that cut a third party off: never automatic on a partner-connected identity. */
const REVOCATIONS: ReadonlySet<ActionType> = new Set([
  'revoke_sessions',
  'revoke_tokens',
  'revoke_oauth_grant',
  'rotate_credential',
  'disable_account',
  'disable_service_account',
]);

/** A partner-connected identity: revoking its access needs coordination with the partner. */
export const thirdParty: Guard = {
  name: 'third_party',
  apply(plan, { entry }) {
    if (!entry.thirdParty || !REVOCATIONS.has(plan.action) || plan.mode === 'never') return;
    plan.guards.push({
      guard: 'third_party',
      effect: `approval ${plan.mode} -> external`,
      reason: `connected to partner ${entry.thirdParty.partner} (grant ${entry.thirdParty.grant}): revocation needs coordination`,
    });
    plan.mode = 'external';
  },
};
