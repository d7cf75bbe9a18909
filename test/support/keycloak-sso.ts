/**
 * Test support: single sign-on against the real Keycloak. createSsoRealm() builds a realm with a
 * confidential client for the console (standard flow, PKCE S256 required, a `groups` claim in the
 * ID token) and users in groups soc-analysts, soc-auditors, soc-admins, plus one in no group.
 * signIn() plays the browser: it follows the redirects, posts Keycloak's login form (parsed from its
 * HTML) and keeps each site's cookies apart, with no browser.
 */
import { randomBytes } from 'node:crypto';
import type { KeycloakHandle, TestRealm } from './keycloak.ts';
import { createTestRealm } from './keycloak.ts';

const SSO_PASSWORD = 'correct-horse-battery';
const SSO_USERS = {
  ann: ['soc-analysts'],
  ben: ['soc-analysts'],
  aud: ['soc-auditors'],
  root: ['soc-admins', 'soc-analysts'],
  nobody: [],
} as const;

export interface SsoRealm {
  realm: TestRealm;
  issuer: string;
  clientId: string;
  clientSecret: string;
  cleanup(): Promise<void>;
}

export async function createSsoRealm(h: KeycloakHandle, redirectUri: string): Promise<SsoRealm> {
  const realm = await createTestRealm(h, 'tq-sso');
  const r = `/realms/${realm.realm}`;
  const clientSecret = randomBytes(16).toString('hex');
  await realm.admin('POST', `${r}/clients`, {
    clientId: 'tq-console',
    publicClient: false,
    secret: clientSecret,
    standardFlowEnabled: true,
    directAccessGrantsEnabled: false,
    redirectUris: [redirectUri],
    attributes: { 'pkce.code.challenge.method': 'S256' },
    protocolMappers: [
      {
        name: 'groups',
        protocol: 'openid-connect',
        protocolMapper: 'oidc-group-membership-mapper',
        config: {
          'full.path': 'false',
          'id.token.claim': 'true',
          'access.token.claim': 'true',
          'userinfo.token.claim': 'true',
          'claim.name': 'groups',
        },
      },
    ],
  });
  const groups = new Map<string, string>();
  for (const name of ['soc-analysts', 'soc-auditors', 'soc-admins'])
    groups.set(name, await realm.admin<string>('POST', `${r}/groups`, { name }));
  for (const [username, memberOf] of Object.entries(SSO_USERS)) {
    const id = await realm.admin<string>('POST', `${r}/users`, {
      username,
      enabled: true,
      email: `${username}@example.test`,
      emailVerified: true,
      firstName: username,
      lastName: 'Example',
      credentials: [{ type: 'password', value: SSO_PASSWORD, temporary: false }],
    });
    for (const g of memberOf) await realm.admin('PUT', `${r}/users/${id}/groups/${groups.get(g)}`);
  }
  return {
    realm,
    issuer: `${h.baseUrl}/realms/${realm.realm}`,
    clientId: 'tq-console',
    clientSecret,
    cleanup: () => realm.cleanup(),
  };
}

/** Cookies per origin, as a browser keeps them (enough for these flows: no paths or expiry). */
export class CookieJar {
  private readonly byOrigin = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const origin = new URL(url).origin;
    const jar = this.byOrigin.get(origin) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/max-age=0/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.byOrigin.set(origin, jar);
  }

  header(url: string): string {
    const jar = this.byOrigin.get(new URL(url).origin);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  get(url: string, name: string): string | undefined {
    return this.byOrigin.get(new URL(url).origin)?.get(name);
  }

  set(url: string, name: string, value: string): void {
    const origin = new URL(url).origin;
    const jar = this.byOrigin.get(origin) ?? new Map<string, string>();
    jar.set(name, value);
    this.byOrigin.set(origin, jar);
  }
}

export interface Hop {
  url: string;
  status: number;
  location: string | null;
  body: string;
}

/** One request with the jar's cookies, redirects not followed. */
export async function hop(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Hop> {
  const cookie = jar.header(url);
  const res = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
  });
  jar.store(url, res);
  const location = res.headers.get('location');
  return {
    url,
    status: res.status,
    location: location ? new URL(location, url).toString() : null,
    body: await res.text(),
  };
}

function decodeEntities(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/** The action URL of Keycloak's login form (`<form id="kc-form-login" … action="…">`). */
function loginFormAction(html: string): string {
  const form = /<form\b[^>]*\bid="kc-form-login"[^>]*>/i.exec(html)?.[0];
  const action = form && /\baction="([^"]+)"/i.exec(form)?.[1];
  if (!action) throw new Error(`no Keycloak login form in the page: ${html.slice(0, 500)}`);
  return decodeEntities(action);
}

/**
 * From the app's /auth/oidc/login to Keycloak's callback URL (code and state), signing in as
 * `username`. Returns the callback URL without calling it, so that tests can tamper with it.
 */
export async function authorize(
  jar: CookieJar,
  appBase: string,
  username: string,
  password = SSO_PASSWORD,
): Promise<string> {
  const start = await hop(jar, `${appBase}/auth/oidc/login`);
  if (start.status !== 302 || !start.location)
    throw new Error(`login did not redirect: ${start.status} ${start.body}`);
  let page = await hop(jar, start.location);
  while (page.status >= 300 && page.status < 400 && page.location && !page.location.startsWith(appBase))
    page = await hop(jar, page.location);
  if (page.status !== 200) throw new Error(`Keycloak login page: ${page.status} ${page.body.slice(0, 300)}`);
  const posted = await hop(jar, loginFormAction(page.body), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, credentialId: '' }).toString(),
  });
  if (posted.status !== 302 || !posted.location?.startsWith(appBase))
    throw new Error(`Keycloak did not redirect back: ${posted.status} ${posted.body.slice(0, 500)}`);
  return posted.location;
}
