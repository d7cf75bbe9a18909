/**
 * Single sign-on in a real Chromium: the console's sign-in page sends the browser to Keycloak, the
 * user signs in on Keycloak's own form, and comes back to the console signed in as themself with the
 * roles their groups map to; a user whose groups map to no role is refused. Any page error fails.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedStack, startEmbedded } from '../../../app/embedded.ts';
import { createLogger } from '../../../platform/log.ts';
import { type AuthConfig, generateAuthConfig } from '../../../services/api/auth.ts';
import { chromiumUnavailableReason, launchChromium } from '../../support/console-browser.ts';
import {
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
} from '../../support/keycloak.ts';
import { createSsoRealm, type SsoRealm } from '../../support/keycloak-sso.ts';

const unavailable = chromiumUnavailableReason() ?? keycloakUnavailableReason();
if (unavailable) console.warn(`[sso.e2e] SKIPPED: ${unavailable}`);

const js = <T>(page: Page, code: string) => page.evaluate(code) as Promise<T>;

describe.skipIf(unavailable !== null)('console sign-in through Keycloak, in Chromium', () => {
  let kc: KeycloakHandle;
  let sso: SsoRealm;
  let stack: EmbeddedStack;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    kc = await startKeycloak();
    const port = 20000 + Math.floor(Math.random() * 20000);
    base = `http://127.0.0.1:${port}`;
    sso = await createSsoRealm(kc, `${base}/auth/oidc/callback`);
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-sso-browser-'));
    const auth: AuthConfig = {
      ...generateAuthConfig(),
      oidc: {
        issuer: sso.issuer,
        clientId: sso.clientId,
        clientSecret: sso.clientSecret,
        roleClaim: 'groups',
        roleMap: { 'soc-analysts': ['analyst'], 'soc-auditors': ['auditor'], 'soc-admins': ['admin'] },
      },
    };
    writeFileSync(join(dataDir, 'auth.json'), JSON.stringify(auth), { mode: 0o600 });
    stack = await startEmbedded({ dataDir, port, durability: 'normal', log: createLogger('silent') });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    await sso?.cleanup();
    await stopKeycloak(kc);
  });

  /** From the console's sign-in page, through Keycloak's form, back to the console. */
  async function signInThroughKeycloak(username: string): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err instanceof Error ? err.message : String(err)));
    await page.goto(`${base}/login?next=/cases`);
    const link = await page.waitForSelector('a[href^="/auth/oidc/login"]');
    await Promise.all([page.waitForNavigation(), link!.click()]);
    expect(page.url().startsWith(sso.issuer)).toBe(true);
    await page.type('#username', username);
    await page.type('#password', 'correct-horse-battery');
    await Promise.all([page.waitForNavigation(), page.click('#kc-login')]);
    return { page, errors };
  }

  it('an analyst and an auditor come back signed in with their roles; the console shows who they are', async () => {
    for (const [user, roles] of [
      ['ann', 'analyst'],
      ['aud', 'auditor'],
    ] as const) {
      const { page, errors } = await signInThroughKeycloak(user);
      expect(new URL(page.url()).pathname).toBe('/cases');
      expect(await js<string>(page, 'document.body.dataset.principal')).toBe(user);
      expect(await js<string>(page, 'document.body.dataset.roles')).toBe(roles);
      // the session cookie is HttpOnly: the page script cannot read it
      expect(await js<string>(page, 'document.cookie')).not.toContain('tq_session');
      expect(errors).toEqual([]);
      await page.browserContext().close();
    }
  });

  it('a user whose groups map to no role is refused and gets no session', async () => {
    const { page } = await signInThroughKeycloak('nobody');
    const body = await js<string>(page, 'document.body.innerText');
    expect(body).toContain('SIGN_IN_REFUSED');
    expect(body).toContain('no_role');
    const cookies = await page.browserContext().cookies();
    expect(cookies.some((c) => c.name === 'tq_session')).toBe(false);
    await page.browserContext().close();
  });
});
