/**
 * Okta end to end on the embedded stack, the providers file pointing at the checked local Okta:
 * a known compromise → revoke_sessions (automatic) → verified through Okta's System Log → benign verdict →
 * rolled back with its residue (sessions stay ended, issued access tokens live until expiry) → the
 * user's risk set to LOW in Okta as feedback;
 * a second user → disable_account approved by an analyst → suspended and verified → benign verdict →
 * unsuspended, Okta leaving nothing behind. Every step in the event stream and in explain.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import { OktaFake } from '../support/vendors/okta-fake.ts';
import { policyOf, type SaasStack, startSaasStack } from '../support/vendors/saas-e2e.ts';

describe('Okta provider on the embedded stack', () => {
  let okta: OktaFake;
  let s: SaasStack;

  beforeAll(async () => {
    okta = new OktaFake();
    const url = await okta.start();
    process.env.TQ_E2E_OKTA_TOKEN = okta.apiToken;
    s = await startSaasStack({
      providers: {
        okta: { type: 'okta', baseUrl: url, apiTokenEnv: 'TQ_E2E_OKTA_TOKEN', universalLogout: true },
      },
      policy: policyOf([
        {
          id: 'idp-compromise',
          kinds: ['known_compromise'],
          types: ['human'],
          ladder: [{ action: 'revoke_sessions', approval: 'auto' }],
        },
        {
          id: 'credential-abuse',
          kinds: ['credential_abuse'],
          types: ['human'],
          ladder: [{ action: 'disable_account', approval: 'analyst' }],
        },
      ]),
    });
  });
  afterAll(async () => {
    await s?.close();
    await okta?.stop();
    delete process.env.TQ_E2E_OKTA_TOKEN;
  });

  test('sessions revoked automatically, verified, rolled back naming what stays revoked', async () => {
    const alice = okta.addUser('alice@acme.example');
    const identity: IdentityRef = { provider: 'okta', id: 'alice@acme.example', type: 'human' };
    const proposed = await s.propose({
      id: 'okta-itp-1',
      source: 'okta',
      kind: 'known_compromise',
      confidence: 0.97,
      identity,
    });
    expect(proposed.data).toMatchObject({ action: 'revoke_sessions', approval: { mode: 'auto' } });
    const run = await s.verified(proposed, 'sessions revoked and verified');
    expect(alice.sessions).toBe(0);
    expect(alice.globallyRevoked).toBe(1);
    const executed = run.find((e) => e.type === 'ActionExecuted');
    expect((executed!.data as { priorState: Record<string, unknown> }).priorState.resolvedId).toBe(alice.id);

    const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'the rollback');
    expect(rolled.data.complete).toBe(false);
    expect(rolled.data.residue.join('\n')).toMatch(/Okta default 1 h/);

    // The verdict goes back to Okta's detection: the user's risk lowered.
    const fb = await s.feedback(proposed.data.caseId);
    expect(fb.data).toMatchObject({ verdict: 'benign', provider: 'okta' });
    expect(fb.data.calls).toEqual([
      expect.objectContaining({ ok: true, call: expect.stringContaining('riskLevel=LOW') }),
    ]);
    expect(alice.risk).toBe('LOW');

    const x = await s.explain(proposed.data.actionId);
    expect(x.feedback?.calls[0]?.ok).toBe(true);
    expect(x.narrative.join('\n')).toMatch(/verdict benign told to okta/);
    expect(x.verification?.probes.map((p) => p.probe)).toContain('sessions cleared');
    expect(x.rollback.performed?.residue).toEqual(rolled.data.residue);
    expect(x.case.resolution?.verdict).toBe('benign');
    okta.fake.assertNoDeviations();
  });

  test('suspension approved by an analyst, verified, lifted on a benign verdict', async () => {
    const bob = okta.addUser('bob@acme.example');
    const identity: IdentityRef = { provider: 'okta', id: bob.id, type: 'human' };
    const proposed = await s.propose({
      id: 'okta-abuse-1',
      source: 'okta',
      kind: 'credential_abuse',
      confidence: 0.9,
      identity,
    });
    expect(proposed.data).toMatchObject({ action: 'disable_account', approval: { mode: 'analyst' } });
    expect(bob.status).toBe('ACTIVE');
    await s.approve(proposed.data.actionId, proposed.data.argsDigest);
    await s.verified(proposed, 'suspension verified');
    expect(bob.status).toBe('SUSPENDED');

    const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'the rollback');
    // Okta itself leaves nothing behind; what remains is the plan's own note (ended sessions stay ended).
    expect(rolled.data.residue).toEqual(proposed.data.rollback.notes);
    expect(bob.status).toBe('ACTIVE');

    const x = await s.explain(proposed.data.actionId);
    expect(x.approval.approvals.length).toBeGreaterThan(0);
    expect(x.verification?.holds).toBe(true);
    okta.fake.assertNoDeviations();
  });
});
