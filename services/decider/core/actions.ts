import type { ActionType } from '../../../schemas/events.ts';

/** Actions that take an identity out of service entirely (staged containment applies to them). */
export const DISABLING: ReadonlySet<ActionType> = new Set(['disable_account', 'disable_service_account']);

/** What each action cannot give back on rollback, even when the provider reverts perfectly. */
export const INHERENT_RESIDUE: Partial<Record<ActionType, string>> = {
  revoke_sessions: 'revoked sessions cannot be restored; users sign in again',
  revoke_tokens:
    'revoked refresh tokens and consents cannot be restored; access tokens stay valid until expiry',
  revoke_oauth_grant: 'revoked OAuth grants must be re-consented by the user or partner',
  rotate_credential: 'a rotated secret cannot come back; consumers need the new secret',
  disable_account: 'sessions ended by the disable cannot be restored',
  disable_service_account: 'sessions ended by the disable cannot be restored',
};
