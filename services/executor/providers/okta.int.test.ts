/**
 * The Okta adapter against a local Okta whose every request is checked against Okta's published
 * Management/OAuth description: each action's capture → apply → isApplied → verify → revert, identity
 * resolution, error classification (Okta's 429 with X-Rate-Limit-Reset), feedback as user risk.
 */
import { describe, expect, test } from 'vitest';
import { type ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { OktaFake } from '../../../test/support/vendors/okta-fake.ts';
import { failureOf, useLocalVendor } from '../../../test/support/vendors/provider-kit.ts';
import { OktaConfigSchema, type OktaPrior, OktaProvider } from './okta.ts';
import type { ProviderAction } from './port.ts';

let okta: OktaFake;
let url: string;
let seq = 0;
const provider = (extra: Record<string, unknown> = {}) =>
  new OktaProvider(
    OktaConfigSchema.parse({ baseUrl: url, apiToken: okta.apiToken, systemLogPollMs: 10, ...extra }),
    {
      now: Date.now,
    },
  );
const action = (act: ActionType, id: string, args: Record<string, unknown> = {}): ProviderAction => ({
  actionId: `okta-${++seq}`,
  action: act,
  identity: { provider: 'okta', id, type: 'human' },
  args,
});

useLocalVendor(
  () => new OktaFake(),
  (vendor, u) => {
    okta = vendor;
    url = u;
  },
);

test('a request that deviates from Okta’s description fails: a wrong risk body field', async () => {
  const u = okta.addUser('dev@acme.example');
  const res = await fetch(`${url}/api/v1/users/${u.id}/risk`, {
    method: 'PUT',
    headers: { authorization: `SSWS ${okta.apiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ level: 'HIGH' }),
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { errorCode: string }).errorCode).toBe('E0000001');
  expect(() => okta.fake.assertNoDeviations()).toThrow(/riskLevel|additional properties/);
  expect(u.risk).toBe('NONE');
});

describe('actions', () => {
  test('revoke_sessions: resolved from the login once, sessions and OAuth tokens cleared, proven by the System Log', async () => {
    const u = okta.addUser('alice@acme.example');
    const p = provider({ universalLogout: true });
    const a = action('revoke_sessions', 'alice@acme.example');
    const prior = (await p.capture(a)) as OktaPrior;
    expect(prior).toMatchObject({ resolvedId: u.id, login: 'alice@acme.example', status: 'ACTIVE' });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(u.sessions).toBe(0);
    expect(u.globallyRevoked).toBe(1);
    expect([...u.clients.values()][0]!.tokens[0]!.status).toBe('REVOKED');
    expect(okta.fake.callsOf('revokeUserSessions')[0]!.query).toContain('oauthTokens=true');
    expect(await provider().isApplied(a, prior)).toBe(true);
    const probes = await p.verify(a, prior, res);
    expect(probes.map((x) => x.ok)).toEqual([true, true]);
    expect(await p.apply(a, prior)).toMatchObject({ noop: true });
    const rb = await p.revert(a, prior, res);
    expect(rb.residue.join(' ')).toMatch(/Okta default 1 h/);
  });

  test('revoke_sessions: a System Log that is late is waited for, within the configured polls', async () => {
    okta.logLagMs = 120;
    try {
      const u = okta.addUser('lag@acme.example');
      const a = action('revoke_sessions', u.login);
      const patient = provider({ systemLogPolls: 30 });
      const prior = await patient.capture(a);
      const res = await patient.apply(a, prior);
      expect((await patient.verify(a, prior, res))[0]).toMatchObject({ probe: 'sessions cleared', ok: true });

      const v = okta.addUser('lag2@acme.example');
      const b = action('revoke_sessions', v.login);
      const hasty = provider({ systemLogPolls: 1 });
      const bp = await hasty.capture(b);
      const br = await hasty.apply(b, bp);
      expect((await hasty.verify(b, bp, br))[0]).toMatchObject({ ok: false });
    } finally {
      okta.logLagMs = 0;
    }
  });

  test('disable_account: suspended, verified, unsuspended on revert; a user suspended before stays suspended', async () => {
    const u = okta.addUser('bob@acme.example');
    const p = provider();
    const a = action('disable_account', u.id);
    const prior = await p.capture(a);
    const res = await p.apply(a, prior);
    expect(u.status).toBe('SUSPENDED');
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect(await p.revert(a, prior, res)).toEqual({
      restored: [expect.stringContaining('ACTIVE')],
      residue: [],
    });
    expect(u.status).toBe('ACTIVE');

    const already = okta.addUser('carol@acme.example');
    already.status = 'SUSPENDED';
    const b = action('disable_account', already.id);
    const bp = await p.capture(b);
    expect(await p.apply(b, bp)).toMatchObject({ noop: true });
    await p.revert(b, bp, {});
    expect(already.status).toBe('SUSPENDED');
  });

  test('revoke_tokens for one app, revoke_oauth_grant: per app; the consent cannot be rolled back', async () => {
    const u = okta.addUser('dave@acme.example', '0oaCRM');
    const p = provider();
    const t = action('revoke_tokens', u.login, { clientId: '0oaCRM' });
    const tp = await p.capture(t);
    expect(tp).toMatchObject({ tokens: { '0oaCRM': [expect.any(String)] } });
    await p.apply(t, tp);
    expect(u.clients.get('0oaCRM')!.tokens[0]!.status).toBe('REVOKED');
    expect(await p.isApplied(t, tp)).toBe(true);

    const g = action('revoke_oauth_grant', u.login, { clientId: '0oaCRM' });
    const gp = await p.capture(g);
    expect(await p.isApplied(g, gp)).toBe(false);
    const gr = await p.apply(g, gp);
    expect(u.clients.get('0oaCRM')!.grants[0]!.status).toBe('REVOKED');
    expect((await p.verify(g, gp, gr))[0]!.ok).toBe(true);
    expect(await failureOf(p.revert(g, gp, gr))).toBeInstanceOf(RollbackRefusedError);
    expect(await failureOf(p.capture(action('revoke_oauth_grant', u.login)))).toMatchObject({
      retriable: false,
    });
  });

  test('force_step_up expires the password, rotate_credential resets factors: both refuse rollback', async () => {
    const u = okta.addUser('erin@acme.example');
    const p = provider();
    const s = action('force_step_up', u.login);
    const sp = await p.capture(s);
    await p.apply(s, sp);
    expect(u.status).toBe('PASSWORD_EXPIRED');
    expect(await failureOf(p.revert(s, sp, {}))).toBeInstanceOf(RollbackRefusedError);

    const v = okta.addUser('frank@acme.example');
    const r = action('rotate_credential', v.login);
    const rp = await p.capture(r);
    expect(rp).toMatchObject({ factors: ['push', 'token:software:totp'] });
    const res = await p.apply(r, rp);
    expect(res).toMatchObject({ factorsReset: ['push', 'token:software:totp'] });
    expect(v.factors.every((f) => f.status === 'NOT_SETUP')).toBe(true);
    expect((await p.verify(r, rp, res))[0]!.ok).toBe(true);
    const refused = (await failureOf(p.revert(r, rp, res))) as RollbackRefusedError;
    expect(refused.reason).toMatch(/enrols every factor again/);
  });
});

describe('errors and feedback', () => {
  test('429 with X-Rate-Limit-Reset is retriable with retryAfterMs; 404 and 401 permanent; 5xx retriable', async () => {
    const u = okta.addUser('gina@acme.example');
    okta.fake.failNext('getUser', { status: 429, retryAfterSeconds: 5 });
    const limited = (await failureOf(provider().capture(action('disable_account', u.id)))) as ProviderError;
    expect(limited).toMatchObject({ retriable: true, retryAfterMs: 5000 });
    okta.fake.failNext('getUser', { status: 503 });
    expect(await failureOf(provider().capture(action('disable_account', u.id)))).toMatchObject({
      retriable: true,
    });
    const missing = (await failureOf(
      provider().capture(action('disable_account', 'nobody@acme.example')),
    )) as ProviderError;
    expect(missing.retriable).toBe(false);
    expect(missing.message).toMatch(/E0000007/);
    const bad = (await failureOf(
      provider({ apiToken: 'wrong' }).capture(action('disable_account', u.id)),
    )) as ProviderError;
    expect(bad.retriable).toBe(false);
    expect(bad.message).toMatch(/E0000011/);
    // A suspend on a user that is not ACTIVE: Okta's 400 is permanent.
    u.status = 'STAGED';
    const stale = {
      resolvedId: u.id,
      login: u.login,
      status: 'ACTIVE',
      capturedAt: new Date().toISOString(),
    };
    expect(await failureOf(provider().apply(action('disable_account', u.id), stale))).toMatchObject({
      retriable: false,
    });
  });

  test('feedback sets the user risk: HIGH when malicious, LOW when benign', async () => {
    const u = okta.addUser('hank@acme.example');
    const p = provider();
    const identity = { provider: 'okta', id: u.login, type: 'human' as const };
    expect(await p.feedback(identity, 'malicious', { caseId: 'case-1' })).toEqual([
      expect.objectContaining({ ok: true, call: expect.stringContaining('riskLevel=HIGH') }),
    ]);
    expect(u.risk).toBe('HIGH');
    await p.feedback(identity, 'benign', { caseId: 'case-1' });
    expect(u.risk).toBe('LOW');
  });
});
