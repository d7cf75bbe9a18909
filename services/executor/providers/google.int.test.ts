/**
 * The Google Workspace adapter against a local Directory API whose every request is checked against
 * Google's discovery document, and a token endpoint that verifies the service account's signed JWT:
 * each action's capture → apply → isApplied → verify → revert, identity resolution, error classification.
 */
import { describe, expect, test } from 'vitest';
import { type ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { GoogleFake } from '../../../test/support/vendors/google-fake.ts';
import { failureOf, useLocalVendor } from '../../../test/support/vendors/provider-kit.ts';
import { GoogleConfigSchema, type GooglePrior, GoogleProvider } from './google.ts';
import type { ProviderAction } from './port.ts';

let g: GoogleFake;
let url: string;
let seq = 0;
const provider = (extra: Record<string, unknown> = {}) =>
  new GoogleProvider(
    GoogleConfigSchema.parse({
      clientEmail: g.clientEmail,
      privateKey: g.privateKeyPem,
      subject: g.subject,
      baseUrl: url,
      tokenUrl: g.tokenUrl,
      ...extra,
    }),
    { now: Date.now },
  );
const action = (act: ActionType, id: string, args: Record<string, unknown> = {}): ProviderAction => ({
  actionId: `google-${++seq}`,
  action: act,
  identity: { provider: 'google', id, type: 'human' },
  args,
});

useLocalVendor(
  () => new GoogleFake(),
  (vendor, u) => {
    g = vendor;
    url = u;
  },
);

test('a request that deviates from the discovery document fails: a field users do not have', async () => {
  const u = g.addUser('dev@acme.example');
  await provider().capture(action('disable_account', u.email));
  const token = [...(g as unknown as { tokens: Set<string> }).tokens][0]!;
  const res = await fetch(`${url}/admin/directory/v1/users/${u.id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ disabled: true }),
  });
  expect(res.status).toBe(400);
  expect(() => g.fake.assertNoDeviations()).toThrow(/additional properties/);
  expect(u.suspended).toBe(false);
});

describe('actions', () => {
  test('revoke_sessions: resolved from the email once; signed out and app tokens revoked; verified; rolled back with residue', async () => {
    const u = g.addUser('alice@acme.example', ['app-a', 'app-b']);
    const p = provider();
    const a = action('revoke_sessions', 'alice@acme.example');
    const prior = (await p.capture(a)) as GooglePrior;
    expect(prior).toMatchObject({ resolvedId: u.id, email: u.email, clients: ['app-a', 'app-b'] });
    expect(await p.isApplied(a, prior)).toBe(false);
    const res = await p.apply(a, prior);
    expect(u.sessions).toBe(0);
    expect(u.tokens).toEqual([]);
    expect(await provider().isApplied(a, prior)).toBe(true);
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect((await p.revert(a, prior, res)).residue.join(' ')).toMatch(/\(1 h\)/);
  });

  test('disable_account: suspended and lifted; a user suspended before stays suspended', async () => {
    const u = g.addUser('bob@acme.example');
    const p = provider();
    const a = action('disable_account', u.id);
    const prior = await p.capture(a);
    await p.apply(a, prior);
    expect(u.suspended).toBe(true);
    expect(await p.isApplied(a, prior)).toBe(true);
    expect(await p.revert(a, prior, {})).toEqual({
      restored: [expect.stringContaining('suspended false')],
      residue: [],
    });
    expect(u.suspended).toBe(false);
    const c = g.addUser('carol@acme.example');
    c.suspended = true;
    const b = action('disable_account', c.email);
    const bp = await p.capture(b);
    expect(await p.apply(b, bp)).toMatchObject({ noop: true });
    await p.revert(b, bp, {});
    expect(c.suspended).toBe(true);
  });

  test('rotate_credential invalidates backup codes, recording only fingerprints; rollback refused', async () => {
    const u = g.addUser('dan@acme.example');
    const codes = [...u.codes];
    const p = provider();
    const a = action('rotate_credential', u.email);
    const prior = await p.capture(a);
    for (const c of codes) expect(JSON.stringify(prior)).not.toContain(c);
    const res = await p.apply(a, prior);
    expect(u.codes).toEqual([]);
    expect((await p.verify(a, prior, res))[0]!.ok).toBe(true);
    expect(await failureOf(p.revert(a, prior, res))).toBeInstanceOf(RollbackRefusedError);
  });

  test('revoke_oauth_grant for one app leaves the others', async () => {
    const u = g.addUser('erin@acme.example', ['app-a', 'app-b']);
    const p = provider();
    const a = action('revoke_oauth_grant', u.email, { clientId: 'app-b' });
    const prior = await p.capture(a);
    expect(await p.isApplied(a, prior)).toBe(false);
    await p.apply(a, prior);
    expect(u.tokens).toEqual(['app-a']);
    expect(await p.apply(a, prior)).toMatchObject({ noop: true });
    expect(await failureOf(p.capture(action('revoke_oauth_grant', u.email)))).toMatchObject({
      retriable: false,
    });
  });
});

describe('errors', () => {
  test('429 retriable with Retry-After; 404 permanent; a JWT signed with another key permanent; 5xx retriable', async () => {
    const u = g.addUser('fay@acme.example');
    g.fake.failNext('directory.users.get', { status: 429, retryAfterSeconds: 8 });
    expect(await failureOf(provider().capture(action('disable_account', u.id)))).toMatchObject({
      retriable: true,
      retryAfterMs: 8000,
    });
    g.fake.failNext('directory.users.get', { status: 503 });
    expect(await failureOf(provider().capture(action('disable_account', u.id)))).toMatchObject({
      retriable: true,
    });
    const missing = (await failureOf(
      provider().capture(action('disable_account', 'nobody@acme.example')),
    )) as ProviderError;
    expect(missing.retriable).toBe(false);
    expect(missing.message).toMatch(/notFound/);
    const other = new GoogleFake();
    const wrongKey = (await failureOf(
      provider({ privateKey: other.privateKeyPem }).capture(action('disable_account', u.id)),
    )) as ProviderError;
    expect(wrongKey.retriable).toBe(false);
    expect(wrongKey.message).toMatch(/invalid_grant/);
  });

  test('the JSON key file Google Cloud hands out is accepted as privateKey', async () => {
    const u = g.addUser('gus@acme.example');
    const json = JSON.stringify({
      type: 'service_account',
      client_email: g.clientEmail,
      private_key: g.privateKeyPem,
    });
    expect(await provider({ privateKey: json }).capture(action('disable_account', u.email))).toMatchObject({
      resolvedId: u.id,
    });
  });
});
