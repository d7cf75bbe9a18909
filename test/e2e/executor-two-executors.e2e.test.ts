/**
 * Two executor processes (different executor ids, separate SQLite connections to one store file) race
 * on 200 approved actions across 100 real Keycloak users. Each action must have exactly one claim, one
 * provider apply and one ActionExecuted, and Keycloak's own admin events must show each effect once:
 * one logout per revoke_sessions / disable_account, one enabled=false per disable_account, one realm-role
 * removal per quarantine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import {
  type ApprovedSpec,
  adminEvents,
  appendApproved,
  createUsers,
  effectsByUser,
  enableAdminEvents,
  outcomeOf,
  readJournal,
  settled,
  waitFor,
} from '../support/executor-fixtures.ts';
import {
  type ExecutorProc,
  killProc,
  startExecutorProc,
  stopProc,
  writeKeycloakProviders,
} from '../support/executor-procs.ts';
import {
  createTestRealm,
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
  type TestRealm,
} from '../support/keycloak.ts';

const unavailable = keycloakUnavailableReason();
if (unavailable) console.warn(`[executor-two-executors.e2e] SKIPPED: ${unavailable}`);

const USERS = 100;

describe.skipIf(unavailable !== null)('two executors on one store, 200 actions on a real Keycloak', () => {
  let kc: KeycloakHandle;
  let fx: TestRealm;
  const procs: ExecutorProc[] = [];

  beforeAll(async () => {
    kc = await startKeycloak();
    fx = await createTestRealm(kc, 'tq-race');
    await enableAdminEvents(fx.admin, fx.realm);
  }, 300_000);

  afterAll(async () => {
    for (const p of procs) await killProc(p);
    await fx?.cleanup();
    await stopKeycloak(kc);
  }, 120_000);

  test('each provider effect happens once; exactly one ActionExecuted per action', {
    timeout: 240_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-race-'));
    const storePath = join(dir, 'events.db');
    const journal = join(dir, 'journal.jsonl');
    const users = await createUsers(fx.admin, fx.realm, USERS, { role: fx.role });
    const providers = writeKeycloakProviders(dir, kc, { concurrency: 8 });
    const store = new SqliteEventStore({ path: storePath, pollMs: 20 });

    const a = await startExecutorProc({ id: 'exec-a', store: storePath, providers, journal });
    const b = await startExecutorProc({ id: 'exec-b', store: storePath, providers, journal });
    procs.push(a, b);

    // Two actions per user, in one case: revoke_sessions or disable_account, then quarantine (realm role).
    const specs: ApprovedSpec[] = [];
    users.forEach((u, i) => {
      const identity: IdentityRef = { provider: 'keycloak', id: u.username, type: 'human', tenant: fx.realm };
      const caseId = `case-${u.username}`;
      specs.push({
        identity,
        caseId,
        actionId: `act-${u.username}-1`,
        action: i % 2 ? 'disable_account' : 'revoke_sessions',
      });
      specs.push({
        identity,
        caseId,
        actionId: `act-${u.username}-2`,
        action: 'quarantine',
        args: { role: fx.role },
      });
    });
    const started = Date.now();
    await appendApproved(store, specs);
    await waitFor(
      async () =>
        (await Promise.all(specs.map((s) => outcomeOf(store, s.actionId)))).every((o) => settled(o)),
      180_000,
      'all 200 outcomes',
      250,
    );
    const elapsed = Date.now() - started;
    await stopProc(a);
    await stopProc(b);

    // The record: one claim, one ActionExecuted, verified, per action; work shared by both executors.
    const owners = new Map<string, number>();
    const failures: string[] = [];
    for (const s of specs) {
      const o = await outcomeOf(store, s.actionId);
      for (const f of o.failed) failures.push(`${s.actionId}: ${f.data.phase} ${f.data.error.message}`);
      expect(o.executed, s.actionId).toBe(1);
      expect(o.claims, s.actionId).toBe(1);
      expect(o.verified, s.actionId).toBe(1);
      const claim = o.events.find((e) => e.type === 'ExecutionClaimed');
      const owner = claim?.type === 'ExecutionClaimed' ? claim.data.executor : '?';
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
    }
    expect(failures).toEqual([]);
    const executed = await store.readAll({ types: ['ActionExecuted'] });
    expect(executed).toHaveLength(specs.length);

    // The provider journal (both processes): one apply per action; both processes captured some actions
    // the other then won (the claim race was real).
    const lines = readJournal(journal);
    const applies = new Map<string, number>();
    const captures = new Map<string, Set<string>>();
    for (const l of lines) {
      if (l.phase === 'apply-start') applies.set(l.actionId, (applies.get(l.actionId) ?? 0) + 1);
      if (l.phase === 'capture')
        captures.set(l.actionId, (captures.get(l.actionId) ?? new Set()).add(l.executor));
    }
    for (const s of specs) expect(applies.get(s.actionId), s.actionId).toBe(1);
    const contested = [...captures.values()].filter((x) => x.size > 1).length;

    // Keycloak's own record, per user.
    const effects = effectsByUser(await adminEvents(fx.admin, fx.realm));
    users.forEach((u, i) => {
      const e = effects.get(u.id);
      expect(e, u.username).toBeDefined();
      expect(e!.logouts, `${u.username} logouts`).toBe(1);
      expect(e!.disables, `${u.username} disables`).toBe(i % 2 ? 1 : 0);
      expect(e!.roleRemovals, `${u.username} role removals`).toBe(1);
    });
    const state = await fx.admin<Array<{ username: string; enabled: boolean }>>(
      'GET',
      `/realms/${fx.realm}/users?max=1000`,
    );
    for (const [i, u] of users.entries()) {
      expect(state.find((x) => x.username === u.username)?.enabled, u.username).toBe(i % 2 === 0);
    }

    console.log(
      `[two-executors] ${specs.length} actions in ${elapsed} ms (${((specs.length / elapsed) * 1000).toFixed(1)} actions/s); ` +
        `claims won: ${[...owners].map(([k, v]) => `${k}=${v}`).join(', ')}; contested captures: ${contested}`,
    );
    expect(owners.get('exec-a') ?? 0).toBeGreaterThan(0);
    expect(owners.get('exec-b') ?? 0).toBeGreaterThan(0);
    await store.close();
  });
});
