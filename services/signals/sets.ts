/**
 * Which Security Event Tokens (RFC 8417) a recorded containment event becomes, as OpenID Shared
 * Signals: CAEP and RISC events that tell the applications relying on an identity what Tourniquet did
 * to it, so that they drop their own sessions too. Pure: the same event always gives the same claims
 * (`jti` and `iat` come from the event, not from a clock), so a re-sent SET is the same SET and a
 * receiver deduplicates it by `jti`.
 *
 * Only effects that took place are signalled: `ActionExecuted` (reconciled ones too: the effect is
 * there) and `ActionRolledBack` where the rollback gave an account back. Proposals, approvals and
 * failures stay inside Tourniquet. `quarantine` narrows access inside the identity provider and has
 * no Shared Signals event of its own.
 */
import { sha256Hex } from '../../platform/digest.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import type { ActionType, RecordedEvent } from '../../schemas/events.ts';
import { SIGNAL_URI, type SignalType } from '../../schemas/shared-signals.ts';

/** A SET's claims, but for `aud`: each receiver gets its own audience. */
interface SetClaims {
  iss: string;
  jti: string;
  iat: number;
  txn: string;
  sub_id: Record<string, unknown>;
  events: Record<string, Record<string, unknown>>;
}

export interface Signal {
  type: SignalType;
  /** The recorded event it reports. */
  eventId: string;
  position: number;
  claims: SetClaims;
}

/** What an executed action is, told as Shared Signals events. */
const ON_EXECUTED: Readonly<Record<ActionType, readonly SignalType[]>> = {
  revoke_sessions: ['session-revoked'],
  revoke_tokens: ['session-revoked'],
  revoke_oauth_grant: ['session-revoked'],
  rotate_credential: ['credential-change'],
  disable_account: ['account-disabled'],
  disable_service_account: ['account-disabled'],
  force_step_up: ['account-credential-change-required'],
  jit_reissue: ['account-enabled', 'credential-change'],
  quarantine: [],
};

/** A rollback that gives an account back; sessions, tokens and secrets do not come back. */
const ON_ROLLED_BACK: Readonly<Partial<Record<ActionType, readonly SignalType[]>>> = {
  disable_account: ['account-enabled'],
  disable_service_account: ['account-enabled'],
};

/** The signals a recorded event becomes (none for most events). */
export function signalsFor(event: RecordedEvent, issuer: string): Signal[] {
  let types: readonly SignalType[];
  let action: ActionType;
  if (event.type === 'ActionExecuted') {
    action = event.data.action;
    types = ON_EXECUTED[action];
  } else if (event.type === 'ActionRolledBack') {
    action = event.data.action;
    types = ON_ROLLED_BACK[action] ?? [];
  } else {
    return [];
  }
  const { identity, actionId, caseId } = event.data;
  const seconds = Math.floor(Date.parse(event.occurredAt) / 1000);
  const verb = event.type === 'ActionExecuted' ? action : `rollback of ${action}`;
  const reason = `Tourniquet ${verb} on ${identity.provider}:${identity.id} (action ${actionId}, case ${caseId})`;
  return types.map((type) => ({
    type,
    eventId: event.id,
    position: event.position,
    claims: {
      iss: issuer,
      jti: sha256Hex(`${event.id}\n${type}`).slice(0, 32),
      iat: seconds,
      txn: caseId,
      sub_id: subjectOf(identity),
      events: { [SIGNAL_URI[type]]: eventClaims(type, seconds, reason) },
    },
  }));
}

function eventClaims(type: SignalType, seconds: number, reason: string): Record<string, unknown> {
  const common = { event_timestamp: seconds, initiating_entity: 'policy', reason_admin: { en: reason } };
  switch (type) {
    case 'credential-change':
      // CAEP names no type for a client secret or an API key: it is a shared secret, like a password
      return { ...common, credential_type: 'password', change_type: 'update' };
    case 'account-disabled':
      return { ...common, reason: 'hijacking' };
    default:
      return common;
  }
}

/**
 * The identity as a Shared Signals complex subject: the identifier (an email address when the id is
 * one, else opaque) under the member its type names, and the tenant when there is one.
 */
function subjectOf(identity: IdentityRef): Record<string, unknown> {
  const id = /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(identity.id)
    ? { format: 'email', email: identity.id }
    : { format: 'opaque', id: identity.id };
  const member =
    identity.type === 'oauth_app' ? 'application' : identity.type === 'workload' ? 'device' : 'user';
  return {
    format: 'complex',
    [member]: id,
    ...(identity.tenant ? { tenant: { format: 'opaque', id: identity.tenant } } : {}),
  };
}
