/**
 * The GitHub adapter against a local GitHub whose every request is checked against GitHub's published
 * REST description (@octokit/openapi): capture → apply → isApplied → verify → revert per target,
 * batching and the revocation budget, error classification and identity resolution.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { openApiOperations, USED } from '../../../test/support/vendors/extract-descriptions.ts';
import { GitHubFake } from '../../../test/support/vendors/github-fake.ts';
import { failureOf, useLocalVendor } from '../../../test/support/vendors/provider-kit.ts';
import { loadDescription } from '../../../test/support/vendors/vendor-fake.ts';
import { GitHubConfigSchema, GitHubProvider, githubProvider, sshFingerprint } from './github.ts';
import type { ProviderAction } from './port.ts';

let gh: GitHubFake;
let url: string;
let seq = 0;
const CLIENT = 'Iv1.tourniquet0001';
let appSecret: string;

const provider = (extra: Record<string, unknown> = {}) =>
  new GitHubProvider(
    GitHubConfigSchema.parse({
      baseUrl: url,
      token: gh.adminToken,
      oauthApps: [{ clientId: CLIENT, clientSecret: appSecret }],
      revokeBatchWindowMs: 50,
      ...extra,
    }),
    { now: Date.now },
  );
const action = (act: ActionType, id: string, extra: Partial<ProviderAction> = {}): ProviderAction => ({
  actionId: `act-${++seq}`,
  action: act,
  identity: { provider: 'github', id, type: 'api_key', tenant: 'acme' },
  args: {},
  ...extra,
});

useLocalVendor(
  () => new GitHubFake(),
  (vendor, u) => {
    gh = vendor;
    url = u;
    appSecret = gh.addApp(CLIENT);
  },
);

describe('requests are checked against GitHub’s description', () => {
  test('a request with a wrong body field is refused and recorded as a deviation', async () => {
    const res = await fetch(`${url}/credentials/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: ['ghp_x'] }),
    });
    expect(res.status).toBe(400);
    expect(() => gh.fake.assertNoDeviations()).toThrow(
      /must have required property 'credentials'|must NOT have additional properties/,
    );
  });

  test('the trimmed description is exactly what the installed @octokit/openapi says about these operations', () => {
    const installed = JSON.parse(
      readFileSync('node_modules/@octokit/openapi/generated/api.github.com.json', 'utf8'),
    ) as Record<string, unknown>;
    const fresh = openApiOperations([installed], USED.github!);
    const fixture = loadDescription('github');
    expect(fixture.operations).toEqual(fresh.operations);
    expect(fixture.definitions).toEqual(fresh.definitions);
  });

  test('an undescribed query parameter and an undescribed route are deviations too', async () => {
    await fetch(`${url}/repos/acme/app/keys?colour=red`, {
      headers: { authorization: `Bearer ${gh.adminToken}` },
    });
    await fetch(`${url}/repos/acme/app/keys/1/disable`, { method: 'POST' });
    expect(() => gh.fake.assertNoDeviations()).toThrow(
      /query parameter colour is not described[\s\S]*no such operation/,
    );
  });
});

describe('leaked credential (revoke_tokens)', () => {
  test('capture records the fingerprint, never the secret; apply revokes; verify probes; revert refuses', async () => {
    const leak = gh.leak();
    const p = provider();
    const a = action('revoke_tokens', leak.identityId);
    const prior = await p.capture(a);
    expect(prior).toMatchObject({
      target: 'credential',
      resolvedId: expect.stringMatching(/^acme\/app#\d+$/),
      activeAtCapture: true,
    });
    expect(JSON.stringify(prior)).not.toContain(leak.secret);
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(res).toMatchObject({ noop: false });
    expect(JSON.stringify(res)).not.toContain(leak.secret);
    expect(gh.credentials.get(leak.secret)?.alive).toBe(false);
    expect(await provider().isApplied(a, prior)).toBe(true);
    expect(await p.verify(a, prior, res)).toEqual([expect.objectContaining({ ok: true })]);
    expect(await p.apply(a, prior)).toMatchObject({ noop: true });
    const refused = await failureOf(p.revert(a, prior, res));
    expect(refused).toBeInstanceOf(RollbackRefusedError);
    expect((refused as RollbackRefusedError).reason).toMatch(/cannot reactivate/);
    // The revocation call is unauthenticated (GitHub refuses it otherwise): the fake would have said 403.
    expect(gh.fake.callsOf('credentials/revoke').at(-1)?.status).toBe(202);
  });

  test('revocations submitted together go out in one call', async () => {
    const leaks = [gh.leak(), gh.leak(), gh.leak()];
    const p = provider();
    const before = gh.fake.callsOf('credentials/revoke').length;
    await Promise.all(
      leaks.map(async (l) => {
        const a = action('revoke_tokens', l.identityId);
        await p.apply(a, await p.capture(a));
      }),
    );
    const calls = gh.fake.callsOf('credentials/revoke').slice(before);
    expect(calls).toHaveLength(1);
    expect((calls[0]!.body as { credentials: string[] }).credentials.sort()).toEqual(
      leaks.map((l) => l.secret).sort(),
    );
    for (const l of leaks) expect(gh.credentials.get(l.secret)?.alive).toBe(false);
  });

  test('a spent revocation budget is retriable with the reset time, and GitHub is not called again', async () => {
    gh.revokeBudget = 1;
    try {
      const p = provider();
      const first = action('revoke_tokens', gh.leak().identityId);
      await p.apply(first, await p.capture(first));
      const second = action('revoke_tokens', gh.leak().identityId);
      const prior = await p.capture(second);
      const before = gh.fake.callsOf('credentials/revoke').length;
      const err = await failureOf(p.apply(second, prior));
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retriable).toBe(true);
      expect((err as ProviderError).retryAfterMs).toBeGreaterThan(3_500_000);
      expect(gh.fake.callsOf('credentials/revoke')).toHaveLength(before);
    } finally {
      gh.revokeBudget = 60;
    }
  });

  test('an alert that shows another secret than the one captured is refused (the same object or nothing)', async () => {
    const leak = gh.leak();
    const p = provider();
    const a = action('revoke_tokens', leak.identityId);
    const prior = await p.capture(a);
    const key = leak.identityId.split(':')[1]!;
    gh.alerts.get(key)!.secret = 'ghp_someoneelse';
    const err = await failureOf(p.apply(a, prior));
    expect((err as ProviderError).retriable).toBe(false);
    expect(gh.credentials.get(leak.secret)?.alive).toBe(true);
  });
});

describe('error classification', () => {
  test('429 with Retry-After is retriable with retryAfterMs; 404 and 401 are permanent; 5xx retriable', async () => {
    const a = action('revoke_tokens', gh.leak().identityId);
    gh.fake.failNext('secret-scanning/get-alert', { status: 429, retryAfterSeconds: 7 });
    const limited = (await failureOf(provider().capture(a))) as ProviderError;
    expect(limited).toMatchObject({ retriable: true, retryAfterMs: 7000 });

    gh.fake.failNext('secret-scanning/get-alert', { status: 502 });
    expect(await failureOf(provider().capture(a))).toMatchObject({ retriable: true });

    const missing = (await failureOf(
      provider().capture(action('revoke_tokens', 'github_personal_access_token:acme/app#9999')),
    )) as ProviderError;
    expect(missing).toMatchObject({ retriable: false });
    expect(missing.message).toMatch(/404/);

    const badToken = (await failureOf(provider({ token: 'ghs_wrong' }).capture(a))) as ProviderError;
    expect(badToken).toMatchObject({ retriable: false });
    expect(badToken.message).toMatch(/401: Bad credentials/);

    const unreachable = await failureOf(
      new GitHubProvider(GitHubConfigSchema.parse({ baseUrl: 'http://127.0.0.1:9', token: 'x' }), {
        now: Date.now,
      }).capture(a),
    );
    expect(unreachable).toMatchObject({ retriable: true });
  });

  test('an identity in no known form is a permanent error naming the forms', async () => {
    const err = (await failureOf(provider().capture(action('revoke_tokens', 'octocat')))) as ProviderError;
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/<secret_type>:<owner>\/<repo>#<number>/);
  });
});

describe('deploy key (disable_service_account)', () => {
  test('resolved by fingerprint once; deleted; verified; re-added on revert under a new id', async () => {
    const k = gh.addDeployKey('acme', 'infra', 'ci deploy');
    const p = provider();
    const a = action('disable_service_account', `deploy-key:acme/infra/${sshFingerprint(k.key)}`, {
      identity: {
        provider: 'github',
        id: `deploy-key:acme/infra/${sshFingerprint(k.key)}`,
        type: 'workload',
      },
    });
    const prior = await p.capture(a);
    expect(prior).toMatchObject({ target: 'deploy-key', keyId: k.id, resolvedId: `acme/infra/${k.id}` });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(gh.deployKeys.get('acme/infra')).toEqual([]);
    expect(await p.isApplied(a, prior)).toBe(true);
    expect((await p.verify(a, prior, res))[0]).toMatchObject({ ok: true });
    const rb = await p.revert(a, prior, res);
    const back = gh.deployKeys.get('acme/infra')!;
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ key: k.key, title: 'ci deploy', read_only: true });
    expect(back[0]!.id).not.toBe(k.id);
    expect(rb.residue[0]).toContain(`was ${k.id}`);
    // Reverting again (a crash before the rollback was recorded) adds nothing.
    await p.revert(a, prior, res);
    expect(gh.deployKeys.get('acme/infra')).toHaveLength(1);
    expect((await p.verify(a, prior, res))[0]).toMatchObject({ ok: false });
  });
});

describe('organization fine-grained token (revoke_tokens, pat:<id>)', () => {
  test('access revoked, verified, rollback refused', async () => {
    const g = gh.addOrgPat('acme', 'mallory', 'deploy-bot');
    const p = provider();
    const a = action('revoke_tokens', `pat:${g.id}`);
    const prior = await p.capture(a);
    expect(prior).toMatchObject({
      target: 'org-pat',
      org: 'acme',
      owner: 'mallory',
      tokenName: 'deploy-bot',
    });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(gh.orgPats.get('acme')?.some((x) => x.id === g.id)).toBe(false);
    expect((await p.verify(a, prior, res))[0]).toMatchObject({ ok: true });
    expect(await p.apply(a, prior)).toMatchObject({ noop: true });
    expect(await failureOf(p.revert(a, prior, res))).toBeInstanceOf(RollbackRefusedError);
  });
});

describe('OAuth app grant (revoke_oauth_grant)', () => {
  test('the grant goes, with every token of it; verified through the app; rollback refused', async () => {
    const leak = gh.leak({ clientId: CLIENT, login: 'alice' });
    const sibling = gh.leak({ clientId: CLIENT, login: 'alice' });
    const p = provider();
    const a = action('revoke_oauth_grant', leak.identityId, { args: { clientId: CLIENT } });
    const prior = await p.capture(a);
    expect(prior).toMatchObject({
      target: 'oauth-grant',
      user: 'alice',
      clientId: CLIENT,
      resolvedId: `${CLIENT}/alice`,
    });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(gh.credentials.get(leak.secret)?.alive).toBe(false);
    expect(gh.credentials.get(sibling.secret)?.alive).toBe(false);
    expect((await p.verify(a, prior, res))[0]).toMatchObject({ ok: true });
    expect(await failureOf(p.revert(a, prior, res))).toBeInstanceOf(RollbackRefusedError);
  });

  test('an app that is not configured is a permanent error', async () => {
    const a = action('revoke_oauth_grant', gh.leak({ clientId: 'Iv1.other' }).identityId, {
      args: { clientId: 'Iv1.other' },
    });
    expect(await failureOf(provider().capture(a))).toMatchObject({ retriable: false });
  });
});

test('feedback resolves the secret-scanning alert: revoked when malicious, false_positive when benign', async () => {
  const p = provider();
  const a = gh.leak();
  const b = gh.leak();
  const identity = (id: string) => ({ provider: 'github', id, type: 'api_key' as const });
  expect(await p.feedback(identity(a.identityId), 'malicious', { caseId: 'case-a' })).toEqual([
    expect.objectContaining({ ok: true, call: expect.stringContaining('resolution=revoked') }),
  ]);
  expect(gh.alerts.get(a.identityId.split(':')[1]!)).toMatchObject({
    state: 'resolved',
    resolution: 'revoked',
  });
  await p.feedback(identity(b.identityId), 'benign', { caseId: 'case-b' });
  expect(gh.alerts.get(b.identityId.split(':')[1]!)).toMatchObject({
    state: 'resolved',
    resolution: 'false_positive',
  });
  expect(await p.feedback(identity('deploy-key:acme/infra/1'), 'benign', { caseId: 'c' })).toEqual([]);
});

test('the definition declares every action the adapter supports, irreversible ones as such', () => {
  const p = provider();
  for (const [action, cap] of Object.entries(githubProvider.actions)) {
    expect(p.supports(action as ActionType)).toBe(true);
    expect(cap.residue.length).toBeGreaterThan(0);
  }
  expect(githubProvider.actions.revoke_tokens?.reversibility).toBe('irreversible');
  expect(p.supports('disable_account')).toBe(false);
});
