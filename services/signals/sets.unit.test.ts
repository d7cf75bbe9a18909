import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import { ACTION_TYPES, type ActionType, type RecordedEvent } from '../../schemas/events.ts';
import { CAEP, RISC } from '../../schemas/shared-signals.ts';
import { normalize } from '../ingest/normalizers/index.ts';
import { signingKeyFromJwk } from './keys.ts';
import { type Signal, signalsFor } from './sets.ts';

const ISSUER = 'https://tourniquet.example';
const ALICE: IdentityRef = { provider: 'okta', id: 'alice@example.com', type: 'human', tenant: 'acme' };
const CI_BOT: IdentityRef = { provider: 'keycloak', id: 'ci-bot', type: 'service_account' };

function executed(action: ActionType, identity: IdentityRef = ALICE, n = 1): RecordedEvent {
  return {
    id: `act-${n}-executed`,
    type: 'ActionExecuted',
    stream: 'identity-x',
    occurredAt: '2026-03-02T10:00:00.500Z',
    recordedAt: '2026-03-02T10:00:00.600Z',
    causationId: null,
    correlationId: `case-${n}`,
    schemaVersion: 1,
    revision: 3,
    position: 40 + n,
    data: {
      actionId: `act-${n}`,
      caseId: `case-${n}`,
      identity,
      action,
      provider: 'okta',
      idempotencyKey: `act-${n}`,
      result: {},
      priorState: {},
      reconciled: false,
    },
  } as RecordedEvent;
}

function rolledBack(action: ActionType): RecordedEvent {
  const e = executed(action);
  return {
    ...e,
    id: 'act-1-rolled-back',
    type: 'ActionRolledBack',
    data: {
      actionId: 'act-1',
      caseId: 'case-1',
      identity: ALICE,
      action,
      restored: [],
      residue: [],
      complete: true,
    },
  } as RecordedEvent;
}

const typesOf = (signals: Signal[]) => signals.map((s) => s.type);

describe('signalsFor: which Shared Signals events a containment becomes', () => {
  it.each([
    ['revoke_sessions', ['session-revoked']],
    ['revoke_tokens', ['session-revoked']],
    ['revoke_oauth_grant', ['session-revoked']],
    ['rotate_credential', ['credential-change']],
    ['disable_account', ['account-disabled']],
    ['disable_service_account', ['account-disabled']],
    ['force_step_up', ['account-credential-change-required']],
    ['jit_reissue', ['account-enabled', 'credential-change']],
    ['quarantine', []],
  ] as const)('executed %s → %j', (action, want) => {
    expect(typesOf(signalsFor(executed(action), ISSUER))).toEqual(want);
  });

  it('names every action type in the table above', () => {
    for (const action of ACTION_TYPES) expect(() => signalsFor(executed(action), ISSUER)).not.toThrow();
    expect(ACTION_TYPES).toHaveLength(9);
  });

  it('a rollback signals only an account given back', () => {
    expect(typesOf(signalsFor(rolledBack('disable_account'), ISSUER))).toEqual(['account-enabled']);
    expect(typesOf(signalsFor(rolledBack('disable_service_account'), ISSUER))).toEqual(['account-enabled']);
    for (const a of ['revoke_sessions', 'rotate_credential', 'quarantine', 'force_step_up'] as const)
      expect(signalsFor(rolledBack(a), ISSUER)).toEqual([]);
  });

  it('proposals, approvals and failures stay inside', () => {
    const e = executed('disable_account');
    for (const type of ['ActionProposed', 'ActionApproved', 'ActionFailed', 'ActionVerified', 'CaseOpened'])
      expect(signalsFor({ ...e, type } as RecordedEvent, ISSUER)).toEqual([]);
  });

  it('builds the SET claims from the event alone: same event, same jti and iat', () => {
    const [s] = signalsFor(executed('disable_account'), ISSUER);
    expect(s!.claims).toEqual({
      iss: ISSUER,
      jti: expect.stringMatching(/^[0-9a-f]{32}$/),
      iat: Date.parse('2026-03-02T10:00:00Z') / 1000,
      txn: 'case-1',
      sub_id: {
        format: 'complex',
        user: { format: 'email', email: 'alice@example.com' },
        tenant: { format: 'opaque', id: 'acme' },
      },
      events: {
        [`${RISC}account-disabled`]: {
          event_timestamp: Date.parse('2026-03-02T10:00:00Z') / 1000,
          initiating_entity: 'policy',
          reason: 'hijacking',
          reason_admin: {
            en: 'Tourniquet disable_account on okta:alice@example.com (action act-1, case case-1)',
          },
        },
      },
    });
    expect(signalsFor(executed('disable_account'), ISSUER)).toEqual(
      signalsFor(executed('disable_account'), ISSUER),
    );
    const jtis = signalsFor(executed('jit_reissue'), ISSUER).map((x) => x.claims.jti);
    expect(new Set(jtis).size).toBe(2);
    expect(signalsFor(executed('disable_account', ALICE, 2), ISSUER)[0]!.claims.jti).not.toBe(s!.claims.jti);
  });

  it('puts the identifier under the member its type names', () => {
    const subject = (identity: IdentityRef) =>
      signalsFor(executed('revoke_sessions', identity), ISSUER)[0]!.claims.sub_id;
    expect(subject(CI_BOT)).toEqual({ format: 'complex', user: { format: 'opaque', id: 'ci-bot' } });
    expect(subject({ provider: 'entra', id: 'app-1', type: 'oauth_app' })).toMatchObject({
      application: { format: 'opaque', id: 'app-1' },
    });
    expect(subject({ provider: 'aws', id: 'spiffe://x/y', type: 'workload' })).toMatchObject({
      device: { format: 'opaque', id: 'spiffe://x/y' },
    });
  });

  it("round trip: the signed SET verifies with the public key and Tourniquet's own SET normalizer reads it back", async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const key = await signingKeyFromJwk(await exportJWK(privateKey), 'test');
    const [s] = signalsFor(executed('revoke_sessions'), ISSUER);
    const jwt = await new SignJWT({ ...s!.claims, aud: 'https://receiver.example' })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'secevent+jwt' })
      .sign(key.privateKey);
    const keys = { keys: [key.publicJwk] };
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(keys), {
      issuer: ISSUER,
      audience: 'https://receiver.example',
      typ: 'secevent+jwt',
    });
    expect(protectedHeader.kid).toBe(key.kid);
    expect(payload.events).toHaveProperty(`${CAEP}session-revoked`);
    const d = await normalize(jwt, { format: 'set', setKeys: keys, setIssuer: ISSUER });
    expect(d).toMatchObject({
      id: s!.claims.jti,
      identity: { id: 'alice@example.com', tenant: 'acme', type: 'human' },
      title: 'CAEP session-revoked',
      evidence: { signatureVerified: true, txn: 'case-1', initiatingEntity: 'policy' },
    });
  });
});
