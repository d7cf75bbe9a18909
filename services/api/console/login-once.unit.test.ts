import { describe, expect, it } from 'vitest';
import { testEnv } from '../../../test/support/api-env.ts';
import type { Principal } from '../auth.ts';
import { OneTimeLogins } from './login-once.ts';

const admin: Principal = { id: 'local-admin', roles: ['admin'], via: 'session' };

describe('one-time sign-in links', () => {
  it('are single use and expire', () => {
    let t = 1_000;
    const logins = new OneTimeLogins({ now: () => t });
    const a = logins.issue(admin, 60_000);
    const b = logins.issue(admin, 60_000);
    expect(logins.consume(a)).toEqual(admin);
    expect(logins.consume(a)).toBeUndefined();
    t += 60_000;
    expect(logins.consume(b)).toBeUndefined();
    expect(logins.consume('never-issued')).toBeUndefined();
  });

  it('open a console session once over HTTP, then refuse the spent link', async () => {
    const logins = new OneTimeLogins();
    const env = await testEnv({ signIn: { oneTimeLogins: logins } });
    try {
      const token = logins.issue(admin);
      const first = await env.app.inject({ method: 'GET', url: `/login/once?token=${token}` });
      expect(first.statusCode).toBe(303);
      expect(first.headers.location).toBe('/');
      expect(first.headers['referrer-policy']).toBe('no-referrer');
      const cookie = /tq_session=([^;]+)/.exec(String(first.headers['set-cookie']))?.[1];
      expect(cookie).toBeDefined();
      const asAdmin = await env.app.inject({
        method: 'GET',
        url: '/v1/audit/verify',
        cookies: { tq_session: cookie! },
      });
      expect(asAdmin.statusCode).toBe(200);
      const again = await env.app.inject({ method: 'GET', url: `/login/once?token=${token}` });
      expect(again.statusCode).toBe(401);
      expect(again.json().error).toMatchObject({ code: 'SIGN_IN_REFUSED', reason: 'link_spent' });
      expect(again.headers['set-cookie']).toBeUndefined();
      const none = await env.app.inject({ method: 'GET', url: '/login/once' });
      expect(none.statusCode).toBe(400);
      // without an oidc block in auth.json the sign-in page offers no single sign-on button
      const login = await env.app.inject({ method: 'GET', url: '/login' });
      expect(login.statusCode).toBe(200);
      expect(login.body).not.toContain('/auth/oidc/login');
    } finally {
      await env.close();
    }
  });
});
