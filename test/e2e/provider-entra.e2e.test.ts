/**
 * Entra ID end to end on the embedded stack, the providers file pointing at the checked local Graph
 * (client credentials from its token endpoint): a risky sign-in → revoke_sessions (automatic) → verified
 * → benign verdict → rolled back naming the residue → the risk dismissed in Identity Protection;
 * a leaked service-principal secret → rotate_credential
 * approved by an analyst → the secret removed and verified → benign verdict → rollback refused with the
 * reason (a removed secret cannot come back); and a service principal disabled then re-enabled.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import { EntraFake } from '../support/vendors/entra-fake.ts';
import { policyOf, type SaasStack, startSaasStack } from '../support/vendors/saas-e2e.ts';

describe('Entra ID provider on the embedded stack', () => {
  let g: EntraFake;
  let s: SaasStack;

  beforeAll(async () => {
    g = new EntraFake();
    const url = await g.start();
    s = await startSaasStack({
      providers: {
        entra: {
          type: 'entra',
          tenantId: 'tenant',
          clientId: g.clientId,
          clientSecret: g.clientSecret,
          baseUrl: url,
          tokenUrl: g.tokenUrl,
          resetPollMs: 10,
        },
      },
      policy: policyOf([
        {
          id: 'risky-sign-in',
          kinds: ['anomalous_token_use'],
          types: ['human'],
          ladder: [{ action: 'revoke_sessions', approval: 'auto' }],
        },
        {
          id: 'leaked-sp-secret',
          kinds: ['secret_exposure'],
          types: ['service_account'],
          ladder: [{ action: 'rotate_credential', approval: 'analyst' }],
        },
        {
          id: 'sp-abuse',
          kinds: ['suspicious_api_use'],
          types: ['workload'],
          ladder: [{ action: 'disable_service_account', approval: 'auto' }],
        },
      ]),
    });
  });
  afterAll(async () => {
    await s?.close();
    await g?.stop();
  });

  test('sign-in sessions revoked automatically, verified, rolled back naming the token lifetime', async () => {
    const u = g.addUser('alice@acme.example');
    const identity: IdentityRef = { provider: 'entra', id: u.upn, type: 'human' };
    const proposed = await s.propose({
      id: 'entra-risk-1',
      source: 'entra',
      kind: 'anomalous_token_use',
      confidence: 0.92,
      identity,
    });
    expect(proposed.data).toMatchObject({ action: 'revoke_sessions', approval: { mode: 'auto' } });
    await s.verified(proposed, 'sessions revoked');
    expect(Date.parse(u.signInSessionsValidFrom)).toBeGreaterThan(Date.parse('2026-06-01T00:00:00Z'));

    const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'the rollback');
    expect((rolled!.data as { residue: string[] }).residue.join('\n')).toMatch(/60-90 min/);
    // The verdict goes back to Identity Protection: the risk dismissed.
    const fb = await s.feedback(proposed.data.caseId);
    expect(fb.data.calls).toEqual([
      expect.objectContaining({ ok: true, call: 'POST /identityProtection/riskyUsers/dismiss' }),
    ]);
    expect(u.risk).toBe('dismissed');
    const x = await s.explain(proposed.data.actionId);
    expect(x.feedback?.provider).toBe('entra');
    expect(x.verification?.probes[0]?.probe).toMatch(/signInSessionsValidFromDateTime/);
    expect(x.residue.join('\n')).toMatch(/60-90 min/);
    g.fake.assertNoDeviations();
  });

  test('a leaked secret removed after approval, verified; its rollback refused with the reason', async () => {
    const sp = g.addSp('billing-sync');
    const leaked = sp.passwordCredentials[0]!.keyId;
    const identity: IdentityRef = { provider: 'entra', id: sp.appId, type: 'service_account' };
    const proposed = await s.propose({
      id: 'entra-leak-1',
      source: 'github_secret_scanning',
      kind: 'secret_exposure',
      confidence: 0.95,
      identity,
    });
    expect(proposed.data).toMatchObject({
      action: 'rotate_credential',
      approval: { mode: 'analyst' },
      reversibility: { type: 'entra', reversibility: 'irreversible' },
    });
    await s.approve(proposed.data.actionId, proposed.data.argsDigest);
    await s.verified(proposed, 'the secret removed');
    expect(sp.passwordCredentials.map((c) => c.keyId)).not.toContain(leaked);

    const { outcome: failed } = await s.afterBenign(
      proposed,
      ['ActionFailed', 'ActionRolledBack'],
      'the rollback outcome',
    );
    expect((failed!.data as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'ROLLBACK_REFUSED',
      message: expect.stringMatching(/removed client secret or certificate cannot be restored/),
    });
    const x = await s.explain(proposed.data.actionId);
    expect(x.execution.failures.some((f) => f.phase === 'rollback' && f.code === 'ROLLBACK_REFUSED')).toBe(
      true,
    );
    g.fake.assertNoDeviations();
  });

  test('a service principal disabled automatically and enabled again on a benign verdict', async () => {
    const sp = g.addSp('etl');
    const identity: IdentityRef = { provider: 'entra', id: sp.appId, type: 'workload' };
    const proposed = await s.propose({
      id: 'entra-sp-1',
      source: 'sentinel',
      kind: 'suspicious_api_use',
      confidence: 0.9,
      identity,
    });
    await s.verified(proposed, 'disabled');
    expect(sp.accountEnabled).toBe(false);
    await s.verdict(proposed.data.caseId, 'benign');
    await s.actionEvents(proposed.data.actionId, (t) => t.includes('ActionRolledBack'), 'enabled again');
    expect(sp.accountEnabled).toBe(true);
    g.fake.assertNoDeviations();
  });
});
