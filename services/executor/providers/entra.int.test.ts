/**
 * The Entra ID adapter against a local Microsoft Graph whose every request is checked against Graph's
 * published v1.0 description: users and service principals through capture → apply → isApplied →
 * verify → revert, the password reset's long-running operation, client credentials, error classification
 * and risky-user feedback batched into one call.
 */
import { describe, expect, test } from 'vitest';
import { type ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { IdentityType } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { EntraFake } from '../../../test/support/vendors/entra-fake.ts';
import { failureOf, useLocalVendor } from '../../../test/support/vendors/provider-kit.ts';
import { EntraConfigSchema, type EntraPrior, EntraProvider } from './entra.ts';
import type { ProviderAction } from './port.ts';

let g: EntraFake;
let url: string;
let seq = 0;
const provider = (extra: Record<string, unknown> = {}) =>
  new EntraProvider(
    EntraConfigSchema.parse({
      tenantId: 'tenant',
      clientId: g.clientId,
      clientSecret: g.clientSecret,
      baseUrl: url,
      tokenUrl: g.tokenUrl,
      resetPollMs: 10,
      feedbackBatchWindowMs: 30,
      ...extra,
    }),
    { now: Date.now },
  );
const action = (
  act: string,
  id: string,
  type: IdentityType = 'human',
  args: Record<string, unknown> = {},
): ProviderAction => ({
  actionId: `entra-${++seq}`,
  action: act as ProviderAction['action'],
  identity: { provider: 'entra', id, type },
  args,
});

useLocalVendor(
  () => new EntraFake(),
  (vendor, u) => {
    g = vendor;
    url = u;
  },
);

test('a request that deviates from Graph’s description fails: a property users do not have', async () => {
  const u = g.addUser('dev@acme.example');
  const p = provider();
  await p.capture(action('disable_account', u.id)); // obtains a token through the adapter
  const token = [...(g as unknown as { tokens: Set<string> }).tokens][0]!;
  const res = await fetch(`${url}/users/${u.id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ enabled: false }),
  });
  expect(res.status).toBe(400);
  expect(() => g.fake.assertNoDeviations()).toThrow(/additional properties/);
  expect(u.accountEnabled).toBe(true);
});

describe('users', () => {
  test('revoke_sessions: resolved from the UPN once, revoked, proven by signInSessionsValidFromDateTime', async () => {
    const u = g.addUser('alice@acme.example');
    const p = provider();
    const a = action('revoke_sessions', 'alice@acme.example');
    const prior = (await p.capture(a)) as EntraPrior;
    expect(prior).toMatchObject({ kind: 'user', resolvedId: u.id, label: 'alice@acme.example' });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(await provider().isApplied(a, prior)).toBe(true);
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect(await p.apply(a, prior)).toMatchObject({ noop: true });
    expect((await p.revert(a, prior, res)).residue.join(' ')).toMatch(/60-90 min/);
  });

  test('disable_account: accountEnabled false, verified, restored', async () => {
    const u = g.addUser('bob@acme.example');
    const p = provider();
    const a = action('disable_account', u.id);
    const prior = await p.capture(a);
    const res = await p.apply(a, prior);
    expect(u.accountEnabled).toBe(false);
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect(await p.revert(a, prior, res)).toEqual({
      restored: [expect.stringContaining('accountEnabled true')],
      residue: [],
    });
    expect(u.accountEnabled).toBe(true);
  });

  test('rotate_credential: the password reset is polled to completion; its rollback is refused', async () => {
    const u = g.addUser('carol@acme.example');
    const p = provider();
    const a = action('rotate_credential', u.upn);
    const prior = await p.capture(a);
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(res).toMatchObject({ noop: false, polls: 2 });
    expect(g.fake.callsOf('authentication.operations.get')).toHaveLength(2);
    expect(await p.isApplied(a, prior)).toBe(true);
    expect(JSON.stringify(res)).not.toMatch(/newPassword/);
    const refused = (await failureOf(p.revert(a, prior, res))) as RollbackRefusedError;
    expect(refused).toBeInstanceOf(RollbackRefusedError);
    expect(refused.reason).toMatch(/reset password cannot be restored/);
  });
});

describe('service principals', () => {
  test('disable_service_account by appId: resolved to the object id once, disabled, re-enabled', async () => {
    const sp = g.addSp('billing-sync');
    const p = provider();
    const a = action('disable_service_account', sp.appId, 'service_account');
    const prior = await p.capture(a);
    expect(prior).toMatchObject({ kind: 'servicePrincipal', resolvedId: sp.id, label: 'billing-sync' });
    await p.apply(a, prior);
    expect(sp.accountEnabled).toBe(false);
    expect(await p.isApplied(a, prior)).toBe(true);
    await p.revert(a, prior, {});
    expect(sp.accountEnabled).toBe(true);
  });

  test('rotate_credential removes the leaked client secret; several secrets need args.keyId; a certificate needs a proof', async () => {
    const sp = g.addSp('ci', 2);
    const p = provider();
    expect(await failureOf(p.capture(action('rotate_credential', sp.appId, 'workload')))).toMatchObject({
      retriable: false,
    });
    const leaked = sp.passwordCredentials[1]!.keyId;
    const a = action('rotate_credential', sp.appId, 'workload', { keyId: leaked });
    const prior = await p.capture(a);
    const res = await p.apply(a, prior);
    expect(sp.passwordCredentials.map((c) => c.keyId)).not.toContain(leaked);
    expect(sp.passwordCredentials).toHaveLength(1);
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect(await failureOf(p.revert(a, prior, res))).toBeInstanceOf(RollbackRefusedError);
    const cert = action('rotate_credential', sp.appId, 'workload', { keyId: sp.keyCredentials[0]!.keyId });
    expect(await failureOf(p.capture(cert))).toMatchObject({ retriable: false });
  });
});

describe('errors and feedback', () => {
  test('429 with Retry-After retriable; 404 permanent; a wrong client secret permanent; 5xx retriable', async () => {
    const u = g.addUser('dan@acme.example');
    g.fake.failNext('user.get', { status: 429, retryAfterSeconds: 9 });
    expect(await failureOf(provider().capture(action('disable_account', u.id)))).toMatchObject({
      retriable: true,
      retryAfterMs: 9000,
    });
    g.fake.failNext('user.get', { status: 503 });
    expect(await failureOf(provider().capture(action('disable_account', u.id)))).toMatchObject({
      retriable: true,
    });
    const missing = (await failureOf(
      provider().capture(action('disable_account', 'nobody@acme.example')),
    )) as ProviderError;
    expect(missing.retriable).toBe(false);
    expect(missing.message).toMatch(/Request_ResourceNotFound/);
    const badSecret = (await failureOf(
      provider({ clientSecret: 'wrong' }).capture(action('disable_account', u.id)),
    )) as ProviderError;
    expect(badSecret.retriable).toBe(false);
    expect(badSecret.message).toMatch(/invalid_client/);
  });

  test('verdicts reach Identity Protection batched: two benign verdicts, one dismiss call', async () => {
    const a = g.addUser('erin@acme.example');
    const b = g.addUser('fay@acme.example');
    const p = provider();
    const before = g.riskCalls.length;
    const [fa, fb] = await Promise.all([
      p.feedback({ provider: 'entra', id: a.upn, type: 'human' }, 'benign', { caseId: 'c1' }),
      p.feedback({ provider: 'entra', id: b.id, type: 'human' }, 'benign', { caseId: 'c2' }),
    ]);
    expect([fa[0]!.ok, fb[0]!.ok]).toEqual([true, true]);
    expect(g.riskCalls.slice(before)).toEqual([
      { op: 'dismiss', userIds: expect.arrayContaining([a.id, b.id]) },
    ]);
    expect([a.risk, b.risk]).toEqual(['dismissed', 'dismissed']);
    await p.feedback({ provider: 'entra', id: a.id, type: 'human' }, 'malicious', { caseId: 'c3' });
    expect(a.risk).toBe('high');
  });
});

test('identity types the action does not fit are refused before any change', async () => {
  const sp = g.addSp('x');
  expect(
    await failureOf(provider().capture(action('revoke_sessions', sp.appId, 'service_account'))),
  ).toMatchObject({ retriable: false });
  const type: ActionType = 'disable_service_account';
  expect(await failureOf(provider().capture(action(type, 'someone@acme.example')))).toMatchObject({
    retriable: false,
  });
});
