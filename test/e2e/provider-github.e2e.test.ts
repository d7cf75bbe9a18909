/**
 * GitHub end to end on the embedded stack, the providers file pointing at the checked local GitHub:
 * a leaked token's secret-scanning detection → revoke_tokens (automatic) → verified (GitHub refuses the
 * token) → benign verdict → the rollback is refused with its reason (GitHub cannot reactivate a token)
 * → the secret-scanning alert resolved as a false positive (feedback);
 * a deploy key exposed → disable_service_account (automatic) → verified → benign verdict → the key is
 * added back, the rollback naming its residue (a new key id). All of it in the event stream and explain.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import type { RecordedEvent } from '../../schemas/events.ts';
import { GitHubFake } from '../support/vendors/github-fake.ts';
import { policyOf, type SaasStack, startSaasStack } from '../support/vendors/saas-e2e.ts';

describe('GitHub provider on the embedded stack', () => {
  let gh: GitHubFake;
  let s: SaasStack;

  beforeAll(async () => {
    gh = new GitHubFake();
    const url = await gh.start();
    s = await startSaasStack({
      providers: { github: { type: 'github', baseUrl: url, token: gh.adminToken, revokeBatchWindowMs: 20 } },
      policy: policyOf([
        {
          id: 'leaked-token',
          kinds: ['secret_exposure'],
          types: ['api_key'],
          ladder: [{ action: 'revoke_tokens', approval: 'auto', irreversible: 'accept' }],
        },
        {
          id: 'exposed-deploy-key',
          kinds: ['secret_exposure'],
          types: ['workload'],
          ladder: [{ action: 'disable_service_account', approval: 'auto' }],
        },
      ]),
    });
  });
  afterAll(async () => {
    await s?.close();
    await gh?.stop();
  });

  test('leaked token: revoked automatically, verified, rollback refused with the reason, all explained', async () => {
    const leak = gh.leak({ owner: 'acme', repo: 'web' });
    const identity: IdentityRef = {
      provider: 'github',
      id: leak.identityId,
      type: 'api_key',
      tenant: 'acme',
    };
    const proposed = await s.propose({
      id: 'gh-alert-1',
      source: 'github_secret_scanning',
      kind: 'secret_exposure',
      confidence: 0.95,
      identity,
    });
    expect(proposed.data.action).toBe('revoke_tokens');
    // What GitHub can undo was on the proposal before anything ran: nothing, and the rule accepted that.
    expect(proposed.data.reversibility).toMatchObject({ type: 'github', reversibility: 'irreversible' });
    expect(proposed.data.approval.mode).toBe('auto');
    await s.verified(proposed, 'the revocation verified');
    expect(gh.credentials.get(leak.secret)?.alive).toBe(false);

    const { outcome } = await s.afterBenign(
      proposed,
      ['ActionFailed', 'ActionRolledBack'],
      'the rollback outcome',
    );
    expect(outcome.type).toBe('ActionFailed');
    const refused = outcome as RecordedEvent<'ActionFailed'>;
    expect(refused?.data.error.code).toBe('ROLLBACK_REFUSED');
    expect(refused?.data.error.message).toMatch(/cannot reactivate a revoked credential/);
    expect(gh.credentials.get(leak.secret)?.alive, 'a revoked token stays revoked').toBe(false);

    // The verdict goes back to secret scanning: the alert resolved as a false positive.
    const fb = await s.feedback(proposed.data.caseId);
    expect(fb.data.calls).toEqual([
      expect.objectContaining({ ok: true, call: expect.stringContaining('resolution=false_positive') }),
    ]);
    expect(gh.alerts.get(leak.identityId.split(':')[1]!)).toMatchObject({
      state: 'resolved',
      resolution: 'false_positive',
    });

    const x = await s.explain(proposed.data.actionId);
    expect(x.feedback?.provider).toBe('github');
    expect(x.verification?.holds).toBe(true);
    expect(x.execution.executed?.provider).toBe('github');
    expect(JSON.stringify(x)).not.toContain(leak.secret);
    expect(x.case.resolution?.verdict).toBe('benign');
    expect(x.execution.failures.some((f) => f.phase === 'rollback' && f.code === 'ROLLBACK_REFUSED')).toBe(
      true,
    );
    gh.fake.assertNoDeviations();
  });

  test('exposed deploy key: deleted automatically, verified, added back on a benign verdict with its residue', async () => {
    const key = gh.addDeployKey('acme', 'infra', 'prod deploy');
    const identity: IdentityRef = {
      provider: 'github',
      id: `deploy-key:acme/infra/${key.id}`,
      type: 'workload',
      tenant: 'acme',
    };
    const proposed = await s.propose({
      id: 'gh-key-1',
      source: 'github_secret_scanning',
      kind: 'secret_exposure',
      confidence: 0.95,
      identity,
    });
    expect(proposed.data.action).toBe('disable_service_account');
    expect(proposed.data.reversibility).toMatchObject({ type: 'github', reversibility: 'partially' });
    await s.verified(proposed, 'the deletion verified');
    expect(gh.deployKeys.get('acme/infra')).toEqual([]);

    const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'the rollback');
    expect(rolled.data.complete).toBe(false);
    expect(rolled.data.residue.join('\n')).toMatch(new RegExp(`came back as id \\d+ \\(was ${key.id}\\)`));
    expect(gh.deployKeys.get('acme/infra')?.map((k) => k.key)).toEqual([key.key]);

    const x = await s.explain(proposed.data.actionId);
    expect(x.rollback.performed?.residue).toEqual(rolled.data.residue);
    expect(x.residue.length).toBeGreaterThan(0);
    expect(x.narrative.join('\n')).toMatch(/roll|restor/i);
    gh.fake.assertNoDeviations();
  });
});
