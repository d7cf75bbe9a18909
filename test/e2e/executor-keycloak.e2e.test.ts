/**
 * Detection → decider → executor → a real Keycloak, and back on a benign verdict.
 *
 * A user (alice) and a service-account client (tq-svc) hold real tokens. The default policy contains
 * them: known_compromise → revoke_sessions (auto), then disable_account after the 30-minute validation
 * window, approved by an analyst; secret_exposure → rotate_credential (auto), then disable_service_account
 * (analyst). Everything is checked through Keycloak's own token endpoint and Admin API (and its admin
 * events), not through our events. A benign verdict then restores both, newest action first, and the
 * rollback records what it could not restore (access tokens until expiry), and the rotation's rollback is
 * refused with the reason (the old secret cannot come back).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildProviders, parseProvidersConfig } from '../../app/providers-config.ts';
import { InProcessBus } from '../../platform/bus/in-process.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef, NormalizedDetectionInput } from '../../schemas/detection.ts';
import { NormalizedDetection } from '../../schemas/detection.ts';
import { identityStream, type RecordedEvent } from '../../schemas/events.ts';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { DeciderService } from '../../services/decider/service.ts';
import { Executor } from '../../services/executor/executor.ts';
import {
  adminEvents,
  effectsByUser,
  enableAdminEvents,
  outcomeOf,
  settled,
  waitFor,
} from '../support/executor-fixtures.ts';
import {
  createTestRealm,
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
  type TestRealm,
} from '../support/keycloak.ts';

const unavailable = keycloakUnavailableReason();
if (unavailable) console.warn(`[executor-keycloak.e2e] SKIPPED: ${unavailable}`);

const MIN = 60_000;

describe.skipIf(unavailable !== null)('executor against a real Keycloak: contain, verify, roll back', () => {
  let kc: KeycloakHandle;
  let fx: TestRealm;
  let store: SqliteEventStore;
  let bus: InProcessBus;
  let decider: DeciderService;
  let executor: Executor;

  beforeAll(async () => {
    kc = await startKeycloak();
    fx = await createTestRealm(kc, 'tq-exec');
    await enableAdminEvents(fx.admin, fx.realm);
    store = new SqliteEventStore({ path: join(mkdtempSync(join(tmpdir(), 'tq-exec-kc-')), 'events.db') });
    bus = new InProcessBus();
    decider = new DeciderService({ store, bus, policy: loadDefaultPolicy() });
    await decider.start();
    // The providers come from a provider configuration, as `tourniquet start --providers FILE` builds them.
    const config = parseProvidersConfig({
      providers: {
        keycloak: {
          type: 'keycloak',
          baseUrl: kc.baseUrl,
          adminRealm: kc.admin.realm,
          username: kc.admin.username,
          password: kc.admin.password,
        },
      },
    });
    executor = new Executor({ store, providers: buildProviders(config, tmpdir()), executorId: 'e2e-kc' });
    await executor.start();
  }, 300_000);

  afterAll(async () => {
    await executor?.stop();
    await decider?.stop();
    await bus?.close();
    await store?.close();
    await fx?.cleanup();
    await stopKeycloak(kc);
  }, 120_000);

  const t0 = Date.now();
  const at = (offsetMs: number) => new Date(t0 + offsetMs).toISOString();
  let seq = 0;
  const detect = (
    identity: IdentityRef,
    kind: NormalizedDetectionInput['kind'],
    confidence: number,
    offsetMs: number,
  ) =>
    decider.decide({
      type: 'detection',
      at: at(offsetMs),
      detection: NormalizedDetection.parse({
        id: `det-${++seq}`,
        source: 'okta',
        kind,
        confidence,
        severity: 'critical',
        identity,
        occurredAt: at(offsetMs),
      }),
    });

  const actionsOf = async (identity: IdentityRef) =>
    (await store.readStream(identityStream(identity))).filter(
      (e): e is RecordedEvent<'ActionProposed'> => e.type === 'ActionProposed',
    );
  const approvalsOf = async (identity: IdentityRef, actionId: string) =>
    (await store.readStream(identityStream(identity))).filter(
      (e): e is RecordedEvent<'ActionApproved'> =>
        e.type === 'ActionApproved' && e.data.actionId === actionId,
    );
  const settle = async (actionId: string) => {
    await waitFor(async () => settled(await outcomeOf(store, actionId)), 60_000, `outcome of ${actionId}`);
    const o = await outcomeOf(store, actionId);
    expect(o.failed.map((f) => f.data.error.message)).toEqual([]);
    expect(o).toMatchObject({ executed: 1, verified: 1, claims: 1 });
    return o;
  };

  test('a user and a service account are contained, verified through Keycloak, and restored on a benign verdict', {
    timeout: 240_000,
  }, async () => {
    const alice: IdentityRef = {
      provider: 'keycloak',
      id: fx.user.username,
      type: 'human',
      tenant: fx.realm,
    };
    const svc: IdentityRef = {
      provider: 'keycloak',
      id: fx.service.clientId,
      type: 'service_account',
      tenant: fx.realm,
    };
    const user = () =>
      fx.admin<{ enabled: boolean; notBefore?: number }>('GET', `/realms/${fx.realm}/users/${fx.user.id}`);
    const client = () =>
      fx.admin<{ enabled: boolean }>('GET', `/realms/${fx.realm}/clients/${fx.service.id}`);
    const saUser = () =>
      fx.admin<{ enabled: boolean }>('GET', `/realms/${fx.realm}/users/${fx.service.saUserId}`);

    // ---- real tokens, before anything happens
    const login = await fx.password();
    expect(login.status).toBe(200);
    const refresh1 = login.body.refresh_token as string;
    const cc = await fx.clientCredentials(fx.service.clientId, fx.service.secret);
    expect(cc.status).toBe(200);
    const svcToken = cc.body.access_token as string;
    expect(await fx.userinfo(svcToken)).toBe(200);

    // ---- stage 1, automatic: known compromise → revoke_sessions; leaked secret → rotate_credential
    await detect(alice, 'known_compromise', 0.95, 0);
    await detect(svc, 'secret_exposure', 0.9, 0);
    const [revoke] = await actionsOf(alice);
    const [rotate] = await actionsOf(svc);
    expect(revoke!.data).toMatchObject({ action: 'revoke_sessions', approval: { mode: 'auto' } });
    expect(rotate!.data).toMatchObject({ action: 'rotate_credential', approval: { mode: 'auto' } });
    const revoked = await settle(revoke!.data.actionId);
    await settle(rotate!.data.actionId);
    const executedRevoke = revoked.events.find((e) => e.type === 'ActionExecuted')!;
    expect(executedRevoke.causationId).toBe((await approvalsOf(alice, revoke!.data.actionId))[0]!.id);

    // Keycloak itself: the refresh token is refused, no session is left, the old secret no longer works.
    expect((await fx.refresh(refresh1)).status).toBe(400);
    expect(await fx.admin('GET', `/realms/${fx.realm}/users/${fx.user.id}/sessions`)).toEqual([]);
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).toBe(401);
    const rotatedSecret = await fx.currentSecret();
    expect(rotatedSecret).not.toBe(fx.service.secret);
    expect((await user()).enabled).toBe(true); // narrow first: not disabled yet

    // ---- stage 2 needs the validation window and an analyst: proposed, not executed until approved
    const login2 = await fx.password(); // the attacker signs in again with the stolen password
    expect(login2.status).toBe(200);
    const refresh2 = login2.body.refresh_token as string;
    await detect(alice, 'known_compromise', 0.97, 31 * MIN);
    await detect(svc, 'secret_exposure', 0.95, 31 * MIN);
    const disable = (await actionsOf(alice))[1]!;
    const disableSvc = (await actionsOf(svc))[1]!;
    expect(disable.data).toMatchObject({
      action: 'disable_account',
      stage: 2,
      approval: { mode: 'analyst' },
    });
    expect(disableSvc.data).toMatchObject({
      action: 'disable_service_account',
      stage: 2,
      approval: { mode: 'analyst' },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await outcomeOf(store, disable.data.actionId)).claims).toBe(0);
    expect((await user()).enabled).toBe(true);

    const analyst = { id: 'analyst-ana', role: 'analyst' };
    await decider.decide({
      type: 'approve',
      at: at(32 * MIN),
      identity: alice,
      actionId: disable.data.actionId,
      by: analyst,
    });
    await decider.decide({
      type: 'approve',
      at: at(32 * MIN),
      identity: svc,
      actionId: disableSvc.data.actionId,
      by: analyst,
    });
    await settle(disable.data.actionId);
    await settle(disableSvc.data.actionId);
    const [approval] = await approvalsOf(alice, disable.data.actionId);
    expect(approval!.data.by).toMatchObject({ kind: 'human', id: 'analyst-ana' });

    // Keycloak itself: the account is disabled, its refresh token refused, its password refused;
    // the client and its service-account user are disabled, client_credentials refused, its token dead.
    expect((await user()).enabled).toBe(false);
    expect((await fx.refresh(refresh2)).status).toBe(400);
    expect((await fx.password()).status).toBe(400);
    expect((await client()).enabled).toBe(false);
    expect((await saUser()).enabled).toBe(false);
    expect((await fx.clientCredentials(fx.service.clientId, rotatedSecret)).status).not.toBe(200);
    expect(await fx.userinfo(svcToken)).not.toBe(200);

    // ---- benign verdict: rolled back newest first, restored, residue recorded
    const aliceCase = revoke!.data.caseId;
    const svcCase = rotate!.data.caseId;
    await decider.decide({
      type: 'verdict',
      at: at(40 * MIN),
      identity: alice,
      caseId: aliceCase,
      verdict: 'benign',
      by: analyst,
    });
    await decider.decide({
      type: 'verdict',
      at: at(40 * MIN),
      identity: svc,
      caseId: svcCase,
      verdict: 'benign',
      by: analyst,
    });
    const rolledBack = async (actionId: string) => {
      await waitFor(
        async () => (await outcomeOf(store, actionId)).rolledBack.length > 0,
        60_000,
        `rollback of ${actionId}`,
      );
      return (await outcomeOf(store, actionId)).rolledBack[0]!;
    };
    const rbDisable = await rolledBack(disable.data.actionId);
    const rbRevoke = await rolledBack(revoke!.data.actionId);
    const rbDisableSvc = await rolledBack(disableSvc.data.actionId);
    // The rotation cannot be undone: its rollback is refused, and the refusal is recorded with the reason.
    await waitFor(
      async () =>
        (await outcomeOf(store, rotate!.data.actionId)).failed.some((f) => f.data.phase === 'rollback'),
      60_000,
      `refused rollback of ${rotate!.data.actionId}`,
    );
    const rbRotate = (await outcomeOf(store, rotate!.data.actionId)).failed.find(
      (f) => f.data.phase === 'rollback',
    )!;
    expect((await outcomeOf(store, rotate!.data.actionId)).rolledBack).toEqual([]);
    expect(rbDisable.position).toBeLessThan(rbRevoke.position); // reverse order
    expect(rbDisableSvc.position).toBeLessThan(rbRotate.position);

    expect(rbDisable.data.restored.join('\n')).toContain('enabled=true');
    expect(rbRevoke.data.complete).toBe(false);
    expect(rbRevoke.data.residue.join('\n')).toMatch(/accessTokenLifespan=\d+s/);
    expect(rbRevoke.data.residue.join('\n')).toContain('sessions cannot be restored');
    expect(rbDisableSvc.data.restored.join('\n')).toContain(`client ${fx.service.clientId} enabled=true`);
    expect(rbRotate.data.error).toMatchObject({ code: 'ROLLBACK_REFUSED', retriable: false });
    expect(rbRotate.data.error.message).toContain('rotated client secret cannot be restored');
    for (const rb of [rbDisable, rbRevoke, rbDisableSvc]) {
      expect(rb.data.residue.join('\n'), rb.data.actionId).toMatch(/accessTokenLifespan=\d+s|cannot/);
    }

    // Keycloak itself: the account and the client work again; the old refresh tokens stay dead,
    // and only the rotated secret works (the residue said so).
    expect((await user()).enabled).toBe(true);
    expect((await fx.password()).status).toBe(200);
    expect((await fx.refresh(refresh1)).status).toBe(400);
    expect((await client()).enabled).toBe(true);
    expect((await saUser()).enabled).toBe(true);
    expect((await fx.clientCredentials(fx.service.clientId, rotatedSecret)).status).toBe(200);
    expect((await fx.clientCredentials(fx.service.clientId, fx.service.secret)).status).toBe(401);

    // Keycloak's admin events: each effect happened exactly once.
    const effects = effectsByUser(await adminEvents(fx.admin, fx.realm));
    expect(effects.get(fx.user.id)).toMatchObject({ logouts: 2, disables: 1, enables: 1 });
    expect(effects.get(fx.service.saUserId)).toMatchObject({ disables: 1, enables: 1 });
    expect(executor.errors).toEqual([]);
  });
});
