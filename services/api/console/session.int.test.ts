import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUDITOR_KEY, SERVICE_KEY, type TestEnv, testEnv } from '../../../test/support/api-env.ts';
import { safeNext } from './login.ts';
import { CSRF_HEADER, SESSION_COOKIE } from './session.ts';

let env: TestEnv;
let clock = Date.parse('2026-12-06T03:00:00Z');
beforeEach(async () => {
  clock = Date.parse('2026-12-06T03:00:00Z');
  env = await testEnv({ consoleSessions: { idleTimeoutMs: 60_000, now: () => clock } });
});
afterEach(async () => {
  await env.close();
});

const ORIGIN = 'http://localhost:80';
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Signs in through the form and answers the cookie value and the session's CSRF token. */
async function signIn(credential: string): Promise<{ cookie: string; csrf: string }> {
  const res = await env.app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
    payload: form({ key: credential, next: '/cases' }),
  });
  expect(res.statusCode).toBe(303);
  expect(res.headers.location).toBe('/cases');
  const setCookie = String(res.headers['set-cookie']);
  expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[\\w-]{43};`));
  expect(setCookie).toContain('HttpOnly');
  expect(setCookie).toContain('SameSite=Lax');
  expect(setCookie).not.toContain('Secure'); // plain HTTP here
  const cookie = /tq_session=([^;]+)/.exec(setCookie)![1]!;
  const session = env.app.consoleSessions.use(cookie);
  expect(session).toBeDefined();
  return { cookie, csrf: session!.csrfToken };
}

const bearerOf = (name: 'analyst' | 'analyst2' | 'admin') =>
  env.headers[name].authorization!.replace(/^Bearer /, '');

async function pendingActionId(): Promise<string> {
  const q = await env.app.inject({ url: '/v1/actions?status=proposed', headers: env.headers.admin });
  const id = q.json().items[0]?.id as string | undefined;
  expect(id).toBeTruthy();
  return id!;
}

describe('console sign-in', () => {
  it('shows the sign-in form with an API key field', async () => {
    const res = await env.app.inject({ url: '/login' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('name="key"');
    expect(res.body).toContain('Sign in with API key');
  });

  it('an API key signs in; the cookie then authenticates the JSON API as that principal', async () => {
    const { cookie } = await signIn(AUDITOR_KEY);
    const cases = await env.app.inject({ url: '/v1/cases', cookies: { [SESSION_COOKIE]: cookie } });
    expect(cases.statusCode).toBe(200);
    const anonymous = await env.app.inject({ url: '/v1/cases' });
    expect(anonymous.statusCode).toBe(401);
    // roles still apply: an auditor's session may not approve, with or without CSRF token
    const id = await pendingActionId();
    const { csrf } = { csrf: env.app.consoleSessions.use(cookie)!.csrfToken };
    const approve = await env.app.inject({
      method: 'POST',
      url: `/v1/actions/${id}/approve`,
      cookies: { [SESSION_COOKIE]: cookie },
      headers: { [CSRF_HEADER]: csrf, origin: ORIGIN, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(approve.statusCode).toBe(403);
    expect(approve.json().error.code).toBe('FORBIDDEN');
  });

  it('refuses a wrong key, a service key and a sign-in posted from another site', async () => {
    const wrong = await env.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ key: 'tq_not_a_key' }),
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('unknown API key');
    expect(wrong.headers['set-cookie']).toBeUndefined();

    const service = await env.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ key: SERVICE_KEY }),
    });
    expect(service.statusCode).toBe(403);
    expect(service.headers['set-cookie']).toBeUndefined();

    const crossSite = await env.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      payload: form({ key: AUDITOR_KEY }),
    });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.headers['set-cookie']).toBeUndefined();
  });

  it('signing in again with a session already open replaces it (the old cookie stops working)', async () => {
    const first = await signIn(AUDITOR_KEY);
    const again = await env.app.inject({
      method: 'POST',
      url: '/login',
      cookies: { [SESSION_COOKIE]: first.cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      payload: form({ key: bearerOf('analyst') }),
    });
    expect(again.statusCode).toBe(303);
    const cookie = /tq_session=([^;]+)/.exec(String(again.headers['set-cookie']))![1]!;
    expect(cookie).not.toBe(first.cookie);
    expect(env.app.consoleSessions.use(cookie)?.principal.id).toBe('ann');
    expect(
      (await env.app.inject({ url: '/v1/cases', cookies: { tq_session: first.cookie } })).statusCode,
    ).toBe(401);
  });

  it('only sends a signed-in user to a path on this server', () => {
    expect(safeNext('/cases?status=open')).toBe('/cases?status=open');
    expect(safeNext('//evil.example/x')).toBe('/');
    expect(safeNext('/\\evil.example')).toBe('/');
    expect(safeNext('https://evil.example')).toBe('/');
    expect(safeNext(undefined)).toBe('/');
  });
});

describe('CSRF on state-changing requests made with the cookie', () => {
  it('approves only with the session token and from this origin', async () => {
    const { cookie, csrf } = await signIn(bearerOf('analyst'));
    const id = await pendingActionId();
    const approve = (headers: Record<string, string>) =>
      env.app.inject({
        method: 'POST',
        url: `/v1/actions/${id}/approve`,
        cookies: { [SESSION_COOKIE]: cookie },
        headers: { 'content-type': 'application/json', ...headers },
        payload: '{}',
      });

    const noToken = await approve({ origin: ORIGIN });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().error).toMatchObject({ code: 'FORBIDDEN', reason: 'csrf' });
    const wrongToken = await approve({ origin: ORIGIN, [CSRF_HEADER]: `${csrf.slice(1)}x` });
    expect(wrongToken.statusCode).toBe(403);
    const otherOrigin = await approve({ origin: 'http://evil.example', [CSRF_HEADER]: csrf });
    expect(otherOrigin.statusCode).toBe(403);
    expect(otherOrigin.json().error.message).toContain('evil.example');
    const crossSite = await approve({ 'sec-fetch-site': 'cross-site', [CSRF_HEADER]: csrf });
    expect(crossSite.statusCode).toBe(403);
    // a cross-site HTML form cannot send JSON: its URL-encoded body is refused for CSRF before parsing
    const formPost = await env.app.inject({
      method: 'POST',
      url: `/v1/actions/${id}/approve`,
      cookies: { [SESSION_COOKIE]: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      payload: 'comment=ok',
    });
    expect(formPost.statusCode).toBe(403);
    const still = await env.app.inject({ url: `/v1/actions/${id}`, headers: env.headers.admin });
    expect(still.json().approvers).toEqual([]);

    const ok = await approve({ origin: ORIGIN, 'sec-fetch-site': 'same-origin', [CSRF_HEADER]: csrf });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().action.approvers).toContain('ann');
  });

  it('leaves bearer and API-key requests alone, and a credential header wins over the cookie', async () => {
    const { cookie } = await signIn(bearerOf('admin'));
    const id = await pendingActionId();
    const bearer = await env.app.inject({
      method: 'POST',
      url: `/v1/actions/${id}/reject`,
      headers: { ...env.headers.analyst, 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'owner confirmed' }),
    });
    expect(bearer.statusCode).toBe(200);
    const badHeader = await env.app.inject({
      url: '/v1/cases',
      cookies: { [SESSION_COOKIE]: cookie },
      headers: env.headers.bad,
    });
    expect(badHeader.statusCode).toBe(401);
  });
});

describe('session lifetime', () => {
  it('ends after the idle timeout, and at once on logout (which needs the form token)', async () => {
    const { cookie, csrf } = await signIn(AUDITOR_KEY);
    clock += 59_000;
    expect((await env.app.inject({ url: '/v1/cases', cookies: { tq_session: cookie } })).statusCode).toBe(
      200,
    );
    clock += 59_000; // used a moment ago: still within the idle window
    expect((await env.app.inject({ url: '/v1/cases', cookies: { tq_session: cookie } })).statusCode).toBe(
      200,
    );

    const forged = await env.app.inject({
      method: 'POST',
      url: '/logout',
      cookies: { tq_session: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: 'wrong' }),
    });
    expect(forged.statusCode).toBe(403);
    expect((await env.app.inject({ url: '/v1/cases', cookies: { tq_session: cookie } })).statusCode).toBe(
      200,
    );

    const out = await env.app.inject({
      method: 'POST',
      url: '/logout',
      cookies: { tq_session: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      payload: form({ _csrf: csrf }),
    });
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/login');
    expect(String(out.headers['set-cookie'])).toMatch(/tq_session=;.*Expires=Thu, 01 Jan 1970/);
    expect((await env.app.inject({ url: '/v1/cases', cookies: { tq_session: cookie } })).statusCode).toBe(
      401,
    );

    const again = await signIn(AUDITOR_KEY);
    clock += 61_000;
    expect(
      (await env.app.inject({ url: '/v1/cases', cookies: { tq_session: again.cookie } })).statusCode,
    ).toBe(401);
    const login = await env.app.inject({ url: '/login', cookies: { tq_session: again.cookie } });
    expect(login.body).toContain('Your session ended');
  });
});
