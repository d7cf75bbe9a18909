/**
 * AWS end to end on the embedded stack, the providers file pointing at moto (scripts/moto.sh):
 *   - a leaked access key → revoke_tokens (automatic) → the key Inactive in IAM, verified → benign verdict
 *     → Active again, nothing left behind by AWS;
 *   - a stolen role session → revoke_sessions (automatic: the stage says irreversible: accept) → the
 *     aws:TokenIssueTime deny in IAM, verified → benign verdict → the rollback REFUSED with its reason
 *     (deleting the deny would revive the stolen sessions), the deny still there;
 *   - a console user → disable_account approved by an analyst → deny-all attached and login profile gone,
 *     verified → benign verdict → both back, the new password named as residue.
 * The proposal shows AWS's reversibility before approval; every step is in the event stream and explain.
 * AWS has no detector to tell the verdict to, so no feedback is recorded.
 */
import {
  GetLoginProfileCommand,
  type IAMClient,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import { DEFAULT_DENY_ALL } from '../../services/executor/providers/aws.ts';
import {
  createAwsFixture,
  type MotoHandle,
  motoIam,
  motoUnavailableReason,
  startMoto,
  stopMoto,
} from '../support/moto.ts';
import { policyOf, type SaasStack, startSaasStack } from '../support/vendors/saas-e2e.ts';

const unavailable = motoUnavailableReason();
if (unavailable) console.warn(`[provider-aws.e2e] SKIPPED: ${unavailable}`);

describe.skipIf(unavailable !== null)(
  'AWS provider on the embedded stack (moto)',
  { timeout: 60_000 },
  () => {
    let moto: MotoHandle;
    let iam: IAMClient;
    let s: SaasStack;

    beforeAll(async () => {
      moto = await startMoto();
      iam = motoIam(moto.url);
      process.env.TQ_E2E_AWS_SECRET = 'moto-secret';
      s = await startSaasStack({
        providers: {
          aws: {
            type: 'aws',
            endpoint: moto.url,
            accessKeyId: 'AKIAMOTOTESTKEY00000',
            secretAccessKeyEnv: 'TQ_E2E_AWS_SECRET',
          },
        },
        policy: policyOf([
          {
            id: 'aws-leaked-key',
            kinds: ['secret_exposure'],
            types: ['api_key'],
            ladder: [{ action: 'revoke_tokens', approval: 'auto' }],
          },
          {
            id: 'aws-stolen-session',
            kinds: ['known_compromise'],
            types: ['workload'],
            ladder: [{ action: 'revoke_sessions', approval: 'auto', irreversible: 'accept' }],
          },
          {
            id: 'aws-console',
            kinds: ['credential_abuse'],
            types: ['human'],
            ladder: [{ action: 'disable_account', approval: 'analyst' }],
          },
        ]),
      });
    }, 600_000);
    afterAll(async () => {
      await s?.close();
      await stopMoto(moto);
      delete process.env.TQ_E2E_AWS_SECRET;
    });

    test('a leaked access key deactivated automatically, verified, reactivated on a benign verdict', async () => {
      const fx = await createAwsFixture(iam);
      const keyStatus = async () =>
        (await iam.send(new ListAccessKeysCommand({ UserName: fx.userName }))).AccessKeyMetadata?.[0]?.Status;
      const identity: IdentityRef = { provider: 'aws', id: fx.accessKeyId, type: 'api_key' };
      const proposed = await s.propose({
        id: `gh-secret-${fx.accessKeyId}`,
        source: 'github',
        kind: 'secret_exposure',
        confidence: 0.95,
        identity,
      });
      expect(proposed.data).toMatchObject({
        action: 'revoke_tokens',
        approval: { mode: 'auto' },
        reversibility: { provider: 'aws', type: 'aws', reversibility: 'reversible', residue: [] },
      });
      const run = await s.verified(proposed, 'key deactivated');
      expect(await keyStatus()).toBe('Inactive');
      const executed = run.find((e) => e.type === 'ActionExecuted') as {
        data: { priorState: Record<string, unknown> };
      };
      // The key id was resolved once, to its user, and recorded: verify and rollback act on that user's key.
      expect(executed.data.priorState.resolved).toMatchObject({ kind: 'user', userName: fx.userName });

      const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'rollback');
      expect(rolled.data.restored).toEqual([`access key ${fx.accessKeyId} Active again`]);
      expect(rolled.data.residue).toEqual(proposed.data.rollback.notes); // AWS adds nothing
      expect(await keyStatus()).toBe('Active');

      const x = await s.explain(proposed.data.actionId);
      expect(x.rollback.reversibility?.reversibility).toBe('reversible');
      expect(x.narrative.join('\n')).toContain(
        'before approval: revoke_tokens on aws (provider aws) is reversible',
      );
      expect(x.verified).toBe(true);
      expect(x.feedback).toBeNull();
    });

    test('stolen role sessions revoked automatically (accepted as irreversible); the rollback is refused with its reason', async () => {
      const fx = await createAwsFixture(iam);
      const inline = async () =>
        (await iam.send(new ListRolePoliciesCommand({ RoleName: fx.roleName }))).PolicyNames ?? [];
      const identity: IdentityRef = {
        provider: 'aws',
        id: `arn:aws:sts::123456789012:assumed-role/${fx.roleName}/i-0abc`,
        type: 'workload',
      };
      const proposed = await s.propose({
        id: `gd-${fx.roleName}`,
        source: 'guardduty',
        kind: 'known_compromise',
        confidence: 0.97,
        identity,
      });
      expect(proposed.data).toMatchObject({
        action: 'revoke_sessions',
        approval: { mode: 'auto' },
        reversibility: { type: 'aws', reversibility: 'irreversible' },
        rollback: { complete: false },
      });
      expect(proposed.data.reversibility?.residue.join()).toContain('revive the stolen sessions');
      await s.verified(proposed, 'sessions revoked');
      expect((await inline()).length).toBe(1);

      const { events: done, outcome: refused } = await s.afterBenign(
        proposed,
        ['ActionFailed'],
        'refused rollback',
      );
      expect(refused.data).toMatchObject({
        phase: 'rollback',
        error: { code: 'ROLLBACK_REFUSED', retriable: false },
      });
      expect(refused.data.error.message).toContain('valid again, the stolen ones included');
      expect(done.some((e) => e.type === 'ActionRolledBack')).toBe(false);
      expect((await inline()).length).toBe(1); // the deny stays

      const x = await s.explain(proposed.data.actionId);
      expect(x.rollback.refused?.code).toBe('ROLLBACK_REFUSED');
      expect(x.narrative.join('\n')).toMatch(/rollback REFUSED by aws; the action stays in effect/);
      expect(x.narrative.join('\n')).toContain(
        'before approval: revoke_sessions on aws (provider aws) is irreversible',
      );
    });

    test('a console user disabled after an analyst approves; restored on a benign verdict, the password as residue', async () => {
      const fx = await createAwsFixture(iam);
      const attached = async () =>
        (
          await iam.send(new ListAttachedUserPoliciesCommand({ UserName: fx.userName }))
        ).AttachedPolicies?.map((p) => p.PolicyArn) ?? [];
      const hasProfile = () =>
        iam.send(new GetLoginProfileCommand({ UserName: fx.userName })).then(
          () => true,
          () => false,
        );
      const identity: IdentityRef = { provider: 'aws', id: fx.userArn, type: 'human' };
      const proposed = await s.propose({
        id: `ct-${fx.userName}`,
        source: 'cloudtrail',
        kind: 'credential_abuse',
        confidence: 0.9,
        identity,
      });
      expect(proposed.data).toMatchObject({
        action: 'disable_account',
        approval: { mode: 'analyst' },
        reversibility: { type: 'aws', reversibility: 'partially' },
      });
      expect(await hasProfile()).toBe(true);
      await s.approve(proposed.data.actionId, proposed.data.argsDigest);
      await s.verified(proposed, 'user disabled');
      expect(await attached()).toContain(DEFAULT_DENY_ALL);
      expect(await hasProfile()).toBe(false);

      const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'rollback');
      expect(rolled.data.complete).toBe(false);
      expect(rolled.data.residue.join('\n')).toContain('console password');
      expect(await attached()).not.toContain(DEFAULT_DENY_ALL);
      expect(await hasProfile()).toBe(true);

      const x = await s.explain(proposed.data.actionId);
      expect(x.approval.approvals.length).toBe(1);
      expect(x.rollback.performed?.residue).toEqual(rolled.data.residue);
      expect(x.narrative.join('\n')).toContain(
        'a rollback cannot put back: the console password cannot be restored',
      );
    });
  },
);
