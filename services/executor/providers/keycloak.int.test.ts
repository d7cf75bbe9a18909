/**
 * KeycloakProvider against a real Keycloak (scripts/keycloak.sh, or KEYCLOAK_URL).
 * Every action: real tokens first, then capture → apply → verify (seen through Keycloak's own admin API and
 * token endpoint) → apply again (no-op) → revert, with isApplied() before and after.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import {
  createTestRealm,
  jwtClaims,
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
  type TestRealm,
} from '../../../test/support/keycloak.ts';
import {
  type KeycloakPrior,
  KeycloakProvider,
  type KeycloakResult,
  LAST_ACTION_ATTRIBUTE,
  SECRET_ACTIONS_ATTRIBUTE,
} from './keycloak.ts';
import type { ProviderAction } from './port.ts';

const unavailable = keycloakUnavailableReason();
if (unavailable) console.warn(`[keycloak.int.test] SKIPPED: ${unavailable}`);

let seq = 0;
function act(
  action: ActionType,
  identity: IdentityRef,
  args: Record<string, unknown> = {},
  actionId = `act-${action}-${++seq}`,
): ProviderAction {
  return { actionId, action, identity, args };
}
const human = (fx: TestRealm): IdentityRef => ({
  provider: 'keycloak',
  id: fx.user.username,
  type: 'human',
  tenant: fx.realm,
});
const service = (fx: TestRealm): IdentityRef => ({
  provider: 'keycloak',
  id: fx.service.clientId,
  type: 'service_account',
  tenant: fx.realm,
});

function allOk(probes: { probe: string; ok: boolean; detail: string }[]): void {
  expect(probes.length).toBeGreaterThan(0);
  for (const p of probes) expect(p, `${p.probe}: ${p.detail}`).toMatchObject({ ok: true });
}

describe.skipIf(unavailable !== null)('KeycloakProvider (real Keycloak)', { timeout: 60_000 }, () => {
  let kc: KeycloakHandle;
  let kp: KeycloakProvider;
  const realms: TestRealm[] = [];
  const fixture = async (): Promise<TestRealm> => {
    const fx = await createTestRealm(kc);
    realms.push(fx);
    return fx;
  };

  beforeAll(async () => {
    kc = await startKeycloak();
    kp = new KeycloakProvider({
      baseUrl: kc.baseUrl,
      adminRealm: kc.admin.realm,
      clientId: kc.admin.clientId,
      username: kc.admin.username,
      password: kc.admin.password,
    });
  }, 240_000);

  afterAll(async () => {
    for (const fx of realms) await fx.cleanup();
    await stopKeycloak(kc);
  }, 120_000);

  test('revoke_sessions (human): refresh token refused, sessions gone, idempotent, residue', async () => {
    const fx = await fixture();
    const login = await fx.password();
    expect(login.status).toBe(200);
    const rt = login.body.refresh_token as string;
    const a = act('revoke_sessions', human(fx), { probeRefreshToken: rt, probeClientId: 'tq-app' });

    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.user?.sessionIds).toHaveLength(1);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.noop).toBe(false);
    expect(res.revokedSessionIds).toHaveLength(1);
    expect(await kp.isApplied(a, prior)).toBe(true);

    allOk(await kp.verify(a, prior, res));
    expect((await fx.refresh(rt)).status).toBe(400);
    expect(await fx.admin('GET', `/realms/${fx.realm}/users/${fx.user.id}/sessions`)).toEqual([]);

    const before = await fx.admin<{ notBefore: number }>('GET', `/realms/${fx.realm}/users/${fx.user.id}`);
    const again = (await kp.apply(a, prior)) as KeycloakResult;
    expect(again.noop).toBe(true);
    const after = await fx.admin<{ notBefore: number }>('GET', `/realms/${fx.realm}/users/${fx.user.id}`);
    expect(after.notBefore).toBe(before.notBefore);

    const rb = await kp.revert(a, prior, res);
    expect(rb.residue.join('\n')).toContain('accessTokenLifespan=300s');
    expect(rb.residue.join('\n')).toContain('sessions cannot be restored');
    expect((await fx.password()).status).toBe(200);
  });

  test('revoke_sessions (service account): tokens issued before are refused by Keycloak', async () => {
    const fx = await fixture();
    const cc = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    expect(cc.status).toBe(200);
    const old = cc.body.access_token as string;
    // Keycloak 26 keeps no session for client_credentials (introspection says inactive either way);
    // the userinfo endpoint checks the token against the user's and client's not-before.
    expect(await fx.userinfo(old)).toBe(200);

    const a = act('revoke_sessions', service(fx));
    const prior = await kp.capture(a);
    expect(await kp.isApplied(a, prior)).toBe(false);
    // Not-before has one-second resolution: make the old token's iat strictly earlier.
    await new Promise((r) => setTimeout(r, 1100));
    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.noop).toBe(false);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect(await fx.userinfo(old)).toBe(401);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.residue.join('\n')).toContain('accessTokenLifespan=300s');
    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    expect(fresh.status).toBe(200);
    expect(await fx.userinfo(fresh.body.access_token as string)).toBe(200);
  });

  test('revoke_tokens (human): consents and offline tokens revoked, user logged out', async () => {
    const fx = await fixture();
    const offline = await fx.password({ offline: true });
    expect(offline.status).toBe(200);
    const online = await fx.password();
    const a = act('revoke_tokens', human(fx), {
      probeRefreshToken: online.body.refresh_token,
      probeClientId: 'tq-app',
    });
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.consents?.map((c) => c.clientId)).toEqual(['tq-app']);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.consentsRevoked).toEqual(['tq-app']);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect((await fx.refresh(offline.body.refresh_token as string)).status).toBe(400);
    expect((await fx.refresh(online.body.refresh_token as string)).status).toBe(400);
    expect(await fx.admin('GET', `/realms/${fx.realm}/users/${fx.user.id}/consents`)).toEqual([]);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.residue.join('\n')).toMatch(/revoked grants remain revoked.*tq-app/);
    expect(rb.residue.join('\n')).toContain('accessTokenLifespan=300s');
    expect((await fx.password()).status).toBe(200);
  });

  test('revoke_oauth_grant (oauth_app): every user offline grant to the app revoked', async () => {
    const fx = await fixture();
    const offline = await fx.password({ offline: true });
    expect(offline.status).toBe(200);
    const app: IdentityRef = { provider: 'keycloak', id: 'tq-app', type: 'oauth_app', tenant: fx.realm };
    const a = act('revoke_oauth_grant', app, { probeRefreshToken: offline.body.refresh_token });
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.client?.offlineUserIds).toEqual([fx.user.id]);
    expect(await kp.isApplied(a, prior)).toBe(false);
    await new Promise((r) => setTimeout(r, 1100));

    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.noop).toBe(false);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect((await fx.refresh(offline.body.refresh_token as string)).status).toBe(400);
    expect(await fx.admin('GET', `/realms/${fx.realm}/clients/${fx.app.id}/offline-session-count`)).toEqual({
      count: 0,
    });

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.residue.join('\n')).toMatch(/revoked grants remain revoked.*tq-app/);
  });

  test('disable_account: disabled + logged out; revert lets the user sign in again', async () => {
    const fx = await fixture();
    const login = await fx.password();
    const rt = login.body.refresh_token as string;
    const a = act('disable_account', human(fx), { probeRefreshToken: rt, probeClientId: 'tq-app' });
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.user?.enabled).toBe(true);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    const u = await fx.admin<{ enabled: boolean }>('GET', `/realms/${fx.realm}/users/${fx.user.id}`);
    expect(u.enabled).toBe(false);
    const denied = await fx.password();
    expect(denied.status).toBe(400);
    expect(String(denied.body.error_description)).toMatch(/disabled/i);
    expect((await fx.refresh(rt)).status).toBe(400);
    expect(await fx.admin('GET', `/realms/${fx.realm}/users/${fx.user.id}/sessions`)).toEqual([]);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);

    const rb = await kp.revert(a, prior, res);
    expect(rb.restored.join('\n')).toContain('enabled=true');
    expect(rb.residue.join('\n')).toContain('accessTokenLifespan=300s');
    expect(await kp.isApplied(a, prior)).toBe(false);
    expect((await fx.password()).status).toBe(200);
  });

  test('disable_service_account: client and its service account disabled; client_credentials refused', async () => {
    const fx = await fixture();
    const cc = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    expect(cc.status).toBe(200);
    const oldToken = cc.body.access_token as string;
    expect(await fx.userinfo(oldToken)).toBe(200);
    const a = act('disable_service_account', service(fx));
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.client?.enabled).toBe(true);
    expect(JSON.stringify(prior)).not.toContain(fx.service.secret);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).not.toBe(200);
    expect(await fx.userinfo(oldToken)).not.toBe(200);
    const sa = await fx.admin<{ enabled: boolean }>(
      'GET',
      `/realms/${fx.realm}/users/${fx.service.saUserId}`,
    );
    expect(sa.enabled).toBe(false);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.restored).toEqual(
      expect.arrayContaining([expect.stringContaining('client tq-svc enabled=true')]),
    );
    expect(rb.residue.join('\n')).toContain('accessTokenLifespan=300s');
    expect(await kp.isApplied(a, prior)).toBe(false);
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).toBe(200);
  });

  test('rotate_credential: old secret refused, new works, never twice for one action, not restorable', async () => {
    const fx = await fixture();
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).toBe(200);
    const a = act('rotate_credential', service(fx));
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(JSON.stringify(prior)).not.toContain(fx.service.secret);
    expect(prior.client?.secretFingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.noop).toBe(false);
    const secret1 = await fx.currentSecret();
    expect(secret1).not.toBe(fx.service.secret);
    expect(JSON.stringify(res)).not.toContain(secret1);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).not.toBe(200);
    expect((await fx.clientCredentials(fx.service.clientId, secret1)).status).toBe(200);
    const client = await fx.admin<{ attributes: Record<string, string> }>(
      'GET',
      `/realms/${fx.realm}/clients/${fx.service.id}`,
    );
    expect(client.attributes[LAST_ACTION_ATTRIBUTE]).toBe(a.actionId);

    // Same prior: no-op. A fresh capture for the same action id (executor restarted): still a no-op.
    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const recaptured = await kp.capture(a);
    expect(((await kp.apply(a, recaptured)) as KeycloakResult).noop).toBe(true);
    expect(await fx.currentSecret()).toBe(secret1);

    const refused = await kp.revert(a, prior, res).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RollbackRefusedError);
    expect((refused as RollbackRefusedError).reason).toContain('rotated client secret cannot be restored');
    expect(await fx.currentSecret()).toBe(secret1);
  });

  test('rotate_credential after a crash before the rotation: the intent alone does not count as done', async () => {
    const fx = await fixture();
    const a = act('rotate_credential', service(fx));
    const path = `/realms/${fx.realm}/clients/${fx.service.id}`;
    const rep = await fx.admin<{ attributes: Record<string, string> }>('GET', path);
    // What rotateSecret writes just before POST client-secret; the process "died" right after.
    const created = rep.attributes['client.secret.creation.time'] ?? 'none';
    await fx.admin('PUT', path, {
      attributes: {
        ...rep.attributes,
        [SECRET_ACTIONS_ATTRIBUTE]: `${encodeURIComponent(a.actionId)}@${created}`,
      },
    });
    const prior = await kp.capture(a);
    expect(await kp.isApplied(a, prior)).toBe(false);
    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.noop).toBe(false);
    expect(await fx.currentSecret()).not.toBe(fx.service.secret);
    // ...and after the real rotation, a fresh capture for the same action id is a no-op.
    const secret = await fx.currentSecret();
    expect(((await kp.apply(a, await kp.capture(a))) as KeycloakResult).noop).toBe(true);
    expect(await fx.currentSecret()).toBe(secret);
  });

  test('force_step_up: required action blocks password sign-in until reverted', async () => {
    const fx = await fixture();
    const login = await fx.password();
    const rt = login.body.refresh_token as string;
    const a = act('force_step_up', human(fx), {
      requiredAction: 'CONFIGURE_TOTP',
      probeRefreshToken: rt,
      probeClientId: 'tq-app',
    });
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.user?.requiredActions).toEqual([]);
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    const u = await fx.admin<{ requiredActions: string[] }>('GET', `/realms/${fx.realm}/users/${fx.user.id}`);
    expect(u.requiredActions).toEqual(['CONFIGURE_TOTP']);
    const blocked = await fx.password();
    expect(blocked.status).toBe(400);
    expect(String(blocked.body.error_description)).toMatch(/not fully set up/i);
    expect((await fx.refresh(rt)).status).toBe(400);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.restored.join('\n')).toContain('CONFIGURE_TOTP removed');
    expect(rb.residue.join('\n')).toContain('sessions cannot be restored');
    expect(await kp.isApplied(a, prior)).toBe(false);
    expect((await fx.password()).status).toBe(200);
  });

  test('quarantine: realm role and group membership removed, then restored', async () => {
    const fx = await fixture();
    const before = await fx.password();
    expect(
      (jwtClaims(before.body.access_token as string).realm_access as { roles: string[] }).roles,
    ).toContain(fx.role);
    const a = act('quarantine', human(fx), { role: fx.role, group: fx.group.name });
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.quarantine).toMatchObject({ role: { had: true }, group: { had: true } });
    expect(await kp.isApplied(a, prior)).toBe(false);

    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    const after = await fx.password();
    expect(
      (jwtClaims(after.body.access_token as string).realm_access as { roles: string[] }).roles,
    ).not.toContain(fx.role);
    expect(await fx.admin('GET', `/realms/${fx.realm}/users/${fx.user.id}/groups`)).toEqual([]);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    const rb = await kp.revert(a, prior, res);
    expect(rb.restored).toHaveLength(2);
    expect(await kp.isApplied(a, prior)).toBe(false);
    const restored = await fx.password();
    expect(
      (jwtClaims(restored.body.access_token as string).realm_access as { roles: string[] }).roles,
    ).toContain(fx.role);
  });

  test('quarantine (service account): role removed from the service-account user', async () => {
    const fx = await fixture();
    const a = act('quarantine', service(fx), { role: fx.role });
    const prior = await kp.capture(a);
    const res = await kp.apply(a, prior);
    allOk(await kp.verify(a, prior, res));
    const cc = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    const roles = (jwtClaims(cc.body.access_token as string).realm_access as { roles: string[] } | undefined)
      ?.roles;
    expect(roles ?? []).not.toContain(fx.role);
    await kp.revert(a, prior, res);
    const cc2 = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    expect((jwtClaims(cc2.body.access_token as string).realm_access as { roles: string[] }).roles).toContain(
      fx.role,
    );
  });

  test('jit_reissue: a disabled service account comes back with a fresh secret', async () => {
    const fx = await fixture();
    const disable = act('disable_service_account', service(fx));
    await kp.apply(disable, await kp.capture(disable));
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).not.toBe(200);

    const a = act('jit_reissue', service(fx));
    const prior = (await kp.capture(a)) as KeycloakPrior;
    expect(prior.client?.enabled).toBe(false);
    expect(await kp.isApplied(a, prior)).toBe(false);
    const res = (await kp.apply(a, prior)) as KeycloakResult;
    expect(res.secretFingerprint).toMatch(/^sha256:/);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    const secret = await fx.currentSecret();
    expect((await fx.clientCredentials(fx.service.clientId, secret)).status).toBe(200);
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).not.toBe(200);

    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);
    expect(await fx.currentSecret()).toBe(secret);

    const rb = await kp.revert(a, prior, res);
    expect(rb.restored.join('\n')).toContain('client tq-svc enabled=false');
    expect(rb.residue.join('\n')).toContain('re-issued client secret cannot be withdrawn');
    expect((await fx.clientCredentials(fx.service.clientId, secret)).status).not.toBe(200);
  });

  test('jit_reissue (human): a disabled user is enabled and must set a fresh password', async () => {
    const fx = await fixture();
    const disable = act('disable_account', human(fx));
    const dPrior = await kp.capture(disable);
    await kp.apply(disable, dPrior);
    expect((await fx.password()).status).toBe(400);

    const a = act('jit_reissue', human(fx));
    const prior = await kp.capture(a);
    expect(await kp.isApplied(a, prior)).toBe(false);
    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    const u = await fx.admin<{ enabled: boolean; requiredActions: string[] }>(
      'GET',
      `/realms/${fx.realm}/users/${fx.user.id}`,
    );
    expect(u).toMatchObject({ enabled: true, requiredActions: ['UPDATE_PASSWORD'] });
    expect(((await kp.apply(a, prior)) as KeycloakResult).noop).toBe(true);

    const rb = await kp.revert(a, prior, res);
    expect(rb.restored.join('\n')).toContain('enabled=false');
    const back = await fx.admin<{ enabled: boolean; requiredActions: string[] }>(
      'GET',
      `/realms/${fx.realm}/users/${fx.user.id}`,
    );
    expect(back).toMatchObject({ enabled: false, requiredActions: [] });
  });

  test('disable_account on a client identity disables the service account', async () => {
    const fx = await fixture();
    const a = act('disable_account', { ...service(fx), type: 'workload' });
    const prior = await kp.capture(a);
    const res = await kp.apply(a, prior);
    expect(await kp.isApplied(a, prior)).toBe(true);
    allOk(await kp.verify(a, prior, res));
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).not.toBe(200);
    await kp.revert(a, prior, res);
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).toBe(200);
  });

  test('errors: unknown identity is permanent; unreachable Keycloak is retriable', async () => {
    const fx = await fixture();
    const missing = act('disable_account', {
      provider: 'keycloak',
      id: 'nobody',
      type: 'human',
      tenant: fx.realm,
    });
    const e1 = await kp.capture(missing).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ProviderError);
    expect((e1 as ProviderError).retriable).toBe(false);

    const wrongShape = act('rotate_credential', human(fx));
    const e2 = await kp.capture(wrongShape).catch((e: unknown) => e);
    expect((e2 as ProviderError).retriable).toBe(false);

    const down = new KeycloakProvider({
      baseUrl: 'http://127.0.0.1:1',
      username: 'admin',
      password: 'admin',
      timeoutMs: 2000,
    });
    const e3 = await down.capture(act('revoke_sessions', human(fx))).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(ProviderError);
    expect((e3 as ProviderError).retriable).toBe(true);

    const badAdmin = new KeycloakProvider({ baseUrl: kc.baseUrl, username: 'admin', password: 'wrong' });
    const e4 = await badAdmin.capture(act('revoke_sessions', human(fx))).catch((e: unknown) => e);
    expect((e4 as ProviderError).retriable).toBe(false);
  });
});
