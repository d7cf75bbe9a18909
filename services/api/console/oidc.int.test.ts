import { compactDecrypt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestEnv, testEnv } from '../../../test/support/api-env.ts';
import {
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
} from '../../../test/support/keycloak.ts';
import {
  authorize,
  CookieJar,
  createSsoRealm,
  hop,
  type SsoRealm,
} from '../../../test/support/keycloak-sso.ts';
import { type AuthConfig, generateAuthConfig, type Principal } from '../auth.ts';
import { FLOW_COOKIE, flowCookieKey, sealFlow } from './oidc.ts';
import { startConsoleSession } from './session.ts';

/**
 * Single sign-on against the real Keycloak: authorization code + PKCE, the browser played by fetch
 * (redirects followed by hand, Keycloak's login form parsed and posted).
 */

const skip = keycloakUnavailableReason();

describe.skipIf(skip !== null)('OpenID Connect sign-in against Keycloak', () => {
  let kc: KeycloakHandle;
  let sso: SsoRealm;
  let env: TestEnv;
  let auth: AuthConfig;
  let base: string;
  const sessions: Principal[] = [];

  beforeAll(async () => {
    kc = await startKeycloak();
    const port = 20000 + Math.floor(Math.random() * 20000);
    base = `http://127.0.0.1:${port}`;
    sso = await createSsoRealm(kc, `${base}/auth/oidc/callback`);
    auth = {
      ...generateAuthConfig(),
      oidc: {
        issuer: sso.issuer,
        clientId: sso.clientId,
        clientSecret: sso.clientSecret,
        roleClaim: 'groups',
        roleMap: { 'soc-analysts': ['analyst'], 'soc-auditors': ['auditor'], 'soc-admins': ['admin'] },
      },
    };
    env = await testEnv({
      auth,
      signIn: {
        // the console's own session starter, watched
        startSession: (request, reply, principal) => {
          sessions.push(principal);
          return startConsoleSession(request, reply, principal);
        },
      },
    });
    await env.app.listen({ port, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await env?.close();
    await sso?.cleanup();
    await stopKeycloak(kc);
  });

  it('signs in an analyst, an auditor and an admin with the roles their groups map to', async () => {
    for (const [user, roles] of [
      ['ann', ['analyst']],
      ['aud', ['auditor']],
      ['root', ['analyst', 'admin']],
    ] as const) {
      const jar = new CookieJar();
      const callback = await authorize(jar, base, user);
      const before = sessions.length;
      const done = await hop(jar, callback);
      expect(done.status, done.body).toBe(303);
      expect(done.location).toBe(`${base}/`);
      expect(sessions.length).toBe(before + 1);
      expect(sessions.at(-1)).toEqual({ id: user, roles: [...roles], via: 'oidc' });
      // the session cookie now acts as that principal with exactly those roles, on the JSON API too
      const cookie = { cookie: `tq_session=${jar.get(base, 'tq_session')}` };
      expect(jar.get(base, FLOW_COOKIE)).toBeUndefined();
      expect((await fetch(`${base}/v1/cases`, { headers: cookie })).status).toBe(200);
      const auditOnly = await fetch(`${base}/v1/audit/verify`, { headers: cookie });
      expect(auditOnly.status).toBe(roles.some((r) => r === 'auditor' || r === 'admin') ? 200 : 403);
      const adminOnly = await fetch(`${base}/v1/automation/pause`, {
        method: 'POST',
        headers: { ...cookie, 'content-type': 'application/json', origin: base },
        body: JSON.stringify({ reason: 'drill' }),
      });
      // without the page's CSRF token a cookie write is refused whoever it is (403 either way);
      // the role check is the API's, shown on reads above
      expect(adminOnly.status).toBe(403);
      // the flow cookie is spent: the same callback again is refused
      const replay = await hop(jar, callback);
      expect(replay.status).toBe(400);
      expect(JSON.parse(replay.body).error).toMatchObject({ code: 'SIGN_IN_REFUSED', reason: 'expired' });
    }
  });

  it('asks Keycloak for S256 PKCE, state and nonce, and keeps them in a sealed cookie', async () => {
    const jar = new CookieJar();
    const start = await hop(jar, `${base}/auth/oidc/login?next=/cases`);
    const url = new URL(start.location!);
    expect(url.origin + url.pathname).toBe(`${sso.issuer}/protocol/openid-connect/auth`);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toBeTruthy();
    expect(url.searchParams.get('nonce')).toBeTruthy();
    const cookie = jar.get(base, FLOW_COOKIE)!;
    // not readable without the server's key (it carries the PKCE verifier)
    expect(Buffer.from(cookie.split('.')[1] ?? '', 'base64url').toString()).not.toContain('verifier');
    const { plaintext } = await compactDecrypt(cookie, flowCookieKey(auth)!);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toMatchObject({
      state: url.searchParams.get('state'),
      nonce: url.searchParams.get('nonce'),
      next: '/cases',
    });
    expect(start.location).not.toContain(JSON.parse(new TextDecoder().decode(plaintext)).verifier);
  });

  it('refuses a callback whose state is not this browser’s', async () => {
    const jar = new CookieJar();
    const callback = new URL(await authorize(jar, base, 'ann'));
    callback.searchParams.set('state', 'forged-state');
    const before = sessions.length;
    const res = await hop(jar, callback.toString());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'SIGN_IN_REFUSED', reason: 'state_mismatch' });
    expect(sessions.length).toBe(before);
  });

  it('refuses an ID token whose nonce is not the one this sign-in sent', async () => {
    const jar = new CookieJar();
    const callback = await authorize(jar, base, 'ann');
    // the same flow cookie (state, PKCE verifier) but another nonce: as if the ID token came from
    // a different sign-in
    const key = flowCookieKey(auth)!;
    const { plaintext } = await compactDecrypt(jar.get(base, FLOW_COOKIE)!, key);
    const flow = JSON.parse(new TextDecoder().decode(plaintext));
    jar.set(base, FLOW_COOKIE, await sealFlow({ ...flow, nonce: 'another-nonce' }, key));
    const before = sessions.length;
    const res = await hop(jar, callback);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'SIGN_IN_REFUSED', reason: 'nonce_mismatch' });
    expect(sessions.length).toBe(before);
  });

  it('refuses a callback without the flow cookie, and a wrong PKCE verifier', async () => {
    const jar = new CookieJar();
    const callback = await authorize(jar, base, 'ann');
    const stranger = new CookieJar();
    const res = await hop(stranger, callback);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.reason).toBe('expired');

    const key = flowCookieKey(auth)!;
    const { plaintext } = await compactDecrypt(jar.get(base, FLOW_COOKIE)!, key);
    const flow = JSON.parse(new TextDecoder().decode(plaintext));
    jar.set(base, FLOW_COOKIE, await sealFlow({ ...flow, verifier: 'x'.repeat(64) }, key));
    const wrongVerifier = await hop(jar, callback);
    expect(wrongVerifier.status).toBe(401);
    expect(JSON.parse(wrongVerifier.body).error.reason).toBe('code_refused');
  });

  it('refuses a user whose groups map to no role', async () => {
    const jar = new CookieJar();
    const callback = await authorize(jar, base, 'nobody');
    const before = sessions.length;
    const res = await hop(jar, callback);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'SIGN_IN_REFUSED', reason: 'no_role' });
    expect(sessions.length).toBe(before);
  });

  it('refuses a wrong password at Keycloak (no code ever reaches the console)', async () => {
    await expect(authorize(new CookieJar(), base, 'ann', 'wrong')).rejects.toThrow('did not redirect back');
  });
});
