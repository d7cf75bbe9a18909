/**
 * AwsProvider against moto (scripts/moto.sh): every effect is checked through the IAM API itself (key
 * status, attached policies, login profile, inline policies), then restored by revert; identity
 * mapping recorded once; the token-issue-time deny's rollback refused until its sessions expired.
 */
import {
  AttachRolePolicyCommand,
  GetLoginProfileCommand,
  GetRolePolicyCommand,
  type IAMClient,
  ListAccessKeysCommand,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RollbackRefusedError } from '../../../platform/errors.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import {
  type AwsFixture,
  createAwsFixture,
  type MotoHandle,
  motoIam,
  motoUnavailableReason,
  startMoto,
  stopMoto,
} from '../../../test/support/moto.ts';
import { type AwsPrior, AwsProvider, DEFAULT_DENY_ALL, REVOKE_POLICY_PREFIX } from './aws.ts';
import type { ProviderAction } from './port.ts';

const unavailable = motoUnavailableReason();
if (unavailable) console.warn(`[aws.int.test] SKIPPED: ${unavailable}`);

let seq = 0;
const act = (action: ActionType, id: string, type: IdentityRef['type'] = 'human'): ProviderAction => ({
  actionId: `aws-int-${action}-${++seq}-${Date.now()}`,
  action,
  identity: { provider: 'aws', id, type },
  args: {},
});

describe.skipIf(unavailable !== null)('AwsProvider (moto)', { timeout: 60_000 }, () => {
  let moto: MotoHandle;
  let iam: IAMClient;
  const provider = (now?: () => number) =>
    new AwsProvider({
      endpoint: moto.url,
      accessKeyId: 'AKIAMOTOTESTKEY00000',
      secretAccessKey: 'moto',
      ...(now ? { now } : {}),
    });
  const keyStatus = async (fx: AwsFixture) =>
    (await iam.send(new ListAccessKeysCommand({ UserName: fx.userName }))).AccessKeyMetadata?.find(
      (k) => k.AccessKeyId === fx.accessKeyId,
    )?.Status;
  const userPolicies = async (fx: AwsFixture) =>
    (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: fx.userName }))).AttachedPolicies?.map(
      (p) => p.PolicyArn,
    ) ?? [];
  const rolePolicies = async (fx: AwsFixture) =>
    (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: fx.roleName }))).AttachedPolicies?.map(
      (p) => p.PolicyArn,
    ) ?? [];
  const loginProfile = (fx: AwsFixture) =>
    iam.send(new GetLoginProfileCommand({ UserName: fx.userName })).then(
      (r) => r.LoginProfile ?? null,
      (e: { name?: string }) => {
        if (e.name?.startsWith('NoSuchEntity')) return null;
        throw e;
      },
    );

  beforeAll(async () => {
    moto = await startMoto();
    iam = motoIam(moto.url);
  }, 600_000);
  afterAll(async () => {
    await stopMoto(moto);
  }, 60_000);

  test('revoke_tokens by access key id: the key is Inactive, then Active again after revert', async () => {
    const fx = await createAwsFixture(iam);
    const p = provider();
    const a = act('revoke_tokens', fx.accessKeyId, 'api_key');
    const prior = (await p.capture(a)) as unknown as AwsPrior;
    // The key resolved to its user, once: recorded for every later phase.
    expect(prior.resolved).toMatchObject({
      kind: 'user',
      userName: fx.userName,
      accessKeyId: fx.accessKeyId,
    });
    expect(prior.keys).toEqual([{ id: fx.accessKeyId, status: 'Active' }]);
    await p.apply(a, prior as never);
    expect(await keyStatus(fx)).toBe('Inactive');
    const rb = await p.revert(a, prior as never);
    expect(rb).toEqual({ restored: [`access key ${fx.accessKeyId} Active again`], residue: [] });
    expect(await keyStatus(fx)).toBe('Active');
  });

  test('disable_account: deny-all attached and login profile gone; revert puts both back, the password as residue', async () => {
    const fx = await createAwsFixture(iam);
    const p = provider();
    const a = act('disable_account', fx.userArn);
    const prior = await p.capture(a);
    expect(await loginProfile(fx)).not.toBeNull();
    const result = await p.apply(a, prior);
    expect(await userPolicies(fx)).toContain(DEFAULT_DENY_ALL);
    expect(await loginProfile(fx)).toBeNull();
    expect(await p.isApplied(a, prior)).toBe(true);
    const rb = await p.revert(a, prior, result);
    expect(await userPolicies(fx)).not.toContain(DEFAULT_DENY_ALL);
    // The profile is back. (AWS also reports PasswordResetRequired: true for it; moto 5.2.5 drops that
    // flag in CreateLoginProfile, so it is not asserted here.)
    expect(await loginProfile(fx)).not.toBeNull();
    expect(rb.residue.join('\n')).toContain('console password');
    expect(JSON.stringify(rb)).not.toMatch(/aA1!/); // the generated password is never reported
    expect(await p.isApplied(a, prior)).toBe(false);
  });

  test('disable_service_account: every active key Inactive and deny-all attached; revert restores both', async () => {
    const fx = await createAwsFixture(iam, { loginProfile: false });
    const p = provider();
    const a = act('disable_service_account', fx.userName, 'service_account');
    const prior = await p.capture(a);
    const result = await p.apply(a, prior);
    expect(await keyStatus(fx)).toBe('Inactive');
    expect(await userPolicies(fx)).toContain(DEFAULT_DENY_ALL);
    const rb = await p.revert(a, prior, result);
    expect(rb.residue).toEqual([]);
    expect(await keyStatus(fx)).toBe('Active');
    expect(await userPolicies(fx)).not.toContain(DEFAULT_DENY_ALL);
  });

  test('quarantine of a role named by an assumed-role ARN; a deny-all that was there before stays', async () => {
    const fx = await createAwsFixture(iam);
    const p = provider();
    const session = `arn:aws:sts::123456789012:assumed-role/${fx.roleName}/stolen-session`;
    const a = act('quarantine', session, 'workload');
    const prior = (await p.capture(a)) as unknown as AwsPrior;
    expect(prior.resolved).toMatchObject({ kind: 'role', roleName: fx.roleName });
    const result = await p.apply(a, prior as never);
    expect(await rolePolicies(fx)).toContain(DEFAULT_DENY_ALL);
    await p.revert(a, prior as never, result);
    expect(await rolePolicies(fx)).not.toContain(DEFAULT_DENY_ALL);

    // Attached by someone else before the action: the rollback leaves it.
    await iam.send(new AttachRolePolicyCommand({ RoleName: fx.roleName, PolicyArn: DEFAULT_DENY_ALL }));
    const b = act('quarantine', fx.roleArn, 'workload');
    const priorB = await p.capture(b);
    const rb = await p.revert(b, priorB, await p.apply(b, priorB));
    expect(rb.restored.join()).toContain('attached before the action');
    expect(await rolePolicies(fx)).toContain(DEFAULT_DENY_ALL);
  });

  test('verify and revert act on the recorded object, whatever the identity string says later', async () => {
    const fx = await createAwsFixture(iam);
    const p = provider();
    const a = act('revoke_tokens', fx.accessKeyId, 'api_key');
    const prior = await p.capture(a);
    const result = await p.apply(a, prior);
    const renamed = { ...a, identity: { ...a.identity, id: 'someone-else' } };
    expect((await p.verify(renamed, prior, result)).every((x) => x.ok)).toBe(true);
    await p.revert(renamed, prior, result);
    expect(await keyStatus(fx)).toBe('Active');
  });

  test('revoke_sessions: a TokenIssueTime deny at the capture time; rollback refused until the sessions expired', async () => {
    const fx = await createAwsFixture(iam);
    let now = Date.now();
    const p = provider(() => now);
    const a = act('revoke_sessions', fx.roleArn, 'workload');
    const prior = (await p.capture(a)) as unknown as AwsPrior;
    const result = await p.apply(a, prior as never);
    const names = (await iam.send(new ListRolePoliciesCommand({ RoleName: fx.roleName }))).PolicyNames ?? [];
    expect(names).toEqual([prior.revokePolicy]);
    expect(prior.revokePolicy!.startsWith(REVOKE_POLICY_PREFIX)).toBe(true);
    const doc = (
      await iam.send(new GetRolePolicyCommand({ RoleName: fx.roleName, PolicyName: prior.revokePolicy! }))
    ).PolicyDocument!;
    const policy = JSON.parse(decodeURIComponent(doc)) as {
      Statement: { Effect: string; Condition: { DateLessThan: Record<string, string> } }[];
    };
    expect(policy.Statement[0]).toMatchObject({
      Effect: 'Deny',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': prior.capturedAt } },
    });

    const refused = await p.revert(a, prior as never, result).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RollbackRefusedError);
    expect((refused as RollbackRefusedError).reason).toMatch(/valid again, the stolen ones included/);
    expect((await iam.send(new ListRolePoliciesCommand({ RoleName: fx.roleName }))).PolicyNames).toEqual(
      names,
    );

    // The role's maximum session (1 h) later, every cut-off session has expired: the deny may go.
    now += 3600_000 + 1000;
    const rb = await p.revert(a, prior as never, result);
    expect(rb.restored.join()).toContain('removed');
    expect((await iam.send(new ListRolePoliciesCommand({ RoleName: fx.roleName }))).PolicyNames).toEqual([]);
  });

  test('classification: unknown user permanent, unsupported action refused, unreachable endpoint retriable', async () => {
    const p = provider();
    await expect(p.capture(act('quarantine', 'nobody-here'))).rejects.toMatchObject({
      code: 'PROVIDER_PERMANENT',
    });
    expect(p.supports('rotate_credential')).toBe(false);
    await expect(p.capture(act('rotate_credential', 'x'))).rejects.toMatchObject({
      code: 'PROVIDER_PERMANENT',
    });
    const down = new AwsProvider({
      endpoint: 'http://127.0.0.1:1',
      accessKeyId: 'AKIAX',
      secretAccessKey: 'x',
    });
    await expect(down.capture(act('quarantine', 'x'))).rejects.toMatchObject({ code: 'PROVIDER_RETRIABLE' });
  });
});
