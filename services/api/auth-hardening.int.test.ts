/**
 * Authentication hardening over HTTP: tokens must expire (exp, or a configured maximum lifetime),
 * and failed authentication is throttled per source address and per key id (429 + Retry-After),
 * counted in metrics.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestEnv, testEnv } from '../../test/support/api-env.ts';
import { type AuthConfig, generateAuthConfig, hashApiKey, issueLocalAdminToken } from './auth.ts';
import { AuthThrottle } from './auth-throttle.ts';

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const KEY = 'tq_good_key_for_throttle_tests_0123456789';

/** An API whose auth configuration is `extra` over a fresh one; `auth` is what it verifies with. */
async function setup(extra: Partial<AuthConfig>): Promise<{ app: TestEnv['app']; auth: AuthConfig }> {
  const auth: AuthConfig = {
    ...generateAuthConfig(),
    apiKeys: [{ id: 'siem', sha256: hashApiKey(KEY), roles: ['service', 'auditor'] }],
    ...extra,
  };
  env = await testEnv({ auth });
  return { app: env.app, auth };
}

const sign = (
  auth: AuthConfig,
  claims: Record<string, unknown>,
  opts: { exp?: number; iat?: number; kid?: string } = {},
) => {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...(opts.kid ? { kid: opts.kid } : {}) });
  jwt = jwt.setSubject('ann').setIssuer(auth.jwt!.issuer!).setAudience(auth.jwt!.audience!);
  jwt = jwt.setIssuedAt(opts.iat ?? Math.floor(Date.now() / 1000));
  if (opts.exp !== undefined) jwt = jwt.setExpirationTime(opts.exp);
  return jwt.sign(new TextEncoder().encode(auth.jwt!.hs256Secrets![0]!));
};

const get = (e: { app: TestEnv['app'] }, headers: Record<string, string>, remoteAddress = '198.51.100.1') =>
  e.app.inject({ method: 'GET', url: '/v1/cases', headers, remoteAddress });

describe('tokens must expire', () => {
  it('refuses a JWT without exp', async () => {
    const e = await setup({});
    const t = await sign(e.auth, { roles: ['analyst'] });
    const r = await get(e, { authorization: `Bearer ${t}` });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.message).toBe('token has no expiry (exp)');
    const ok = await sign(e.auth, { roles: ['analyst'] }, { exp: Math.floor(Date.now() / 1000) + 60 });
    expect((await get(e, { authorization: `Bearer ${ok}` })).statusCode).toBe(200);
  });

  it('with a maximum lifetime: a token without exp lives that long from iat, and longer ones are cut', async () => {
    const base = generateAuthConfig();
    const e = await setup({ jwt: { ...base.jwt!, maxLifetimeSeconds: 60 } });
    expect(e.auth.jwt?.maxLifetimeSeconds).toBe(60);
    const now = Math.floor(Date.now() / 1000);
    const fresh = await sign(e.auth, { roles: ['analyst'] }, { iat: now });
    expect((await get(e, { authorization: `Bearer ${fresh}` })).statusCode).toBe(200);
    const old = await sign(e.auth, { roles: ['analyst'] }, { iat: now - 120, exp: now + 3600 });
    const r = await get(e, { authorization: `Bearer ${old}` });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.message).toMatch(/maximum lifetime of 60 s/);
  });
});

describe('failed authentication is throttled', () => {
  it('per source address: 429 with Retry-After after N failures, even for a good key; other addresses unaffected', async () => {
    const e = await setup({ throttle: { maxFailures: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i++) expect((await get(e, { 'x-api-key': `tq_wrong_${i}` })).statusCode).toBe(401);
    const blocked = await get(e, { 'x-api-key': `tq_wrong_x` });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error).toMatchObject({ code: 'RATE_LIMITED', scope: 'address', retriable: true });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect((await get(e, { 'x-api-key': KEY })).statusCode).toBe(429);
    expect((await get(e, { 'x-api-key': KEY }, '198.51.100.2')).statusCode).toBe(200);
    const metrics = await e.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { 'x-api-key': KEY },
      remoteAddress: '198.51.100.3',
    });
    expect(metrics.body).toMatch(/^tourniquet_auth_failures_total\{reason="invalid"\} [1-9]/m);
    expect(metrics.body).toMatch(/^tourniquet_auth_throttled_total\{scope="address"\} [1-9]/m);
  });

  it('per key id: bad tokens naming one kid from many addresses are throttled for that kid', async () => {
    const e = await setup({ throttle: { maxFailures: 3, windowSeconds: 60 } });
    // signed with another installation's secret, naming key id idp-1
    const bad = await sign(
      generateAuthConfig(),
      { roles: ['admin'] },
      { exp: Math.floor(Date.now() / 1000) + 60, kid: 'idp-1' },
    );
    for (let i = 0; i < 3; i++) {
      const r = await get(e, { authorization: `Bearer ${bad}` }, `203.0.113.${i + 1}`);
      expect(r.statusCode).toBe(401);
    }
    const blocked = await get(e, { authorization: `Bearer ${bad}` }, '203.0.113.99');
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().error.scope).toBe('key');
    // a token naming another kid from a fresh address still gets its own answer
    const admin = await issueLocalAdminToken(e.auth);
    expect((await get(e, { authorization: `Bearer ${admin}` }, '203.0.113.100')).statusCode).toBe(200);
  });
});

describe('AuthThrottle', () => {
  it('frees an address once its failures leave the window, and bounds what it tracks', () => {
    let t = 0;
    const th = new AuthThrottle({ maxFailures: 2, windowSeconds: 10, maxTracked: 3 }, () => t);
    th.failed('a', undefined);
    t = 4_000;
    th.failed('a', undefined);
    expect(th.blocked('a', undefined)).toEqual({ retryAfterSeconds: 6, scope: 'address' });
    t = 10_001;
    expect(th.blocked('a', undefined)).toBeUndefined();
    for (const x of ['b', 'c', 'd', 'e']) {
      th.failed(x, undefined);
      th.failed(x, undefined);
    }
    expect(th.blocked('e', undefined)).toBeDefined();
    expect(th.blocked('b', undefined)).toBeUndefined(); // forgotten: only 3 tracked
  });
});
