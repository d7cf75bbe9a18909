/**
 * SIGKILL of an executor process at random points, over 24 runs, against one store file and the real
 * Keycloak. Half the runs are killed by the test after a random delay; the other half kill themselves
 * at a chosen point of a provider call (after capture, before or after apply — the window between the
 * provider call and ActionExecuted — after verify, before or after a revert). Each run adds a few
 * approved actions and a benign verdict for an earlier case (so rollbacks are killed too).
 * After a final clean run every action has ended executed (and verified), failed, or rolled back, and
 * none twice: one ActionExecuted per action, and Keycloak's admin events show each effect once.
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
  resolveCase,
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
if (unavailable) console.warn(`[executor-sigkill.e2e] SKIPPED: ${unavailable}`);

const RUNS = 24;
const PER_RUN = 4;
const SELF_KILL_POINTS = [
  'apply-end',
  'apply-start',
  'capture',
  'revert-start',
  'apply-end',
  'revert-end',
  'verify',
];

describe.skipIf(unavailable !== null)('SIGKILL of the executor at random points (real Keycloak)', () => {
  let kc: KeycloakHandle;
  let fx: TestRealm;
  let current: ExecutorProc | undefined;

  beforeAll(async () => {
    kc = await startKeycloak();
    fx = await createTestRealm(kc, 'tq-kill');
    await enableAdminEvents(fx.admin, fx.realm);
  }, 300_000);

  afterAll(async () => {
    if (current) await killProc(current);
    await fx?.cleanup();
    await stopKeycloak(kc);
  }, 120_000);

  test(`every action ends executed, failed or rolled back, none twice, across ${RUNS} SIGKILLs`, {
    timeout: 300_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-kill-'));
    const storePath = join(dir, 'events.db');
    const journal = join(dir, 'journal.jsonl');
    const users = await createUsers(fx.admin, fx.realm, RUNS * PER_RUN, { prefix: 'k' });
    const providers = writeKeycloakProviders(dir, kc, { concurrency: 4 });
    const store = new SqliteEventStore({ path: storePath, pollMs: 20 });
    const specs: ApprovedSpec[] = [];
    const benignCases = new Set<string>();
    const kills: string[] = [];
    const seed = Number(process.env.TQ_SEED ?? Date.now() % 100_000);
    console.log(`[sigkill] seed ${seed} (TQ_SEED=${seed} repeats the kill points and verdicts)`);
    let rnd = seed;
    const random = () => {
      rnd = (rnd * 48271) % 2147483647;
      return rnd / 2147483647;
    };

    for (let run = 0; run < RUNS; run++) {
      // New work: one action per user (revoke_sessions or disable_account), each in its own case.
      const batch = users.slice(run * PER_RUN, (run + 1) * PER_RUN).map((u, i): ApprovedSpec => {
        const identity: IdentityRef = {
          provider: 'keycloak',
          id: u.username,
          type: 'human',
          tenant: fx.realm,
        };
        return {
          identity,
          caseId: `case-${u.username}`,
          actionId: `act-${u.username}`,
          action: (run + i) % 2 ? 'disable_account' : 'revoke_sessions',
        };
      });
      specs.push(...batch);
      await appendApproved(store, batch);
      // A benign verdict for a case from an earlier run (its action executed, or maybe not yet).
      if (run >= 2) {
        const earlier = specs[Math.floor(random() * (specs.length - PER_RUN))]!;
        if (!benignCases.has(earlier.caseId)) {
          benignCases.add(earlier.caseId);
          await resolveCase(store, earlier.identity, earlier.caseId, 'benign');
        }
      }
      const selfKill = run % 2 === 1;
      const point = SELF_KILL_POINTS[Math.floor(run / 2) % SELF_KILL_POINTS.length]!;
      // About one revert per run: kill at the first; other points at the first or second call.
      const killAt = selfKill
        ? `${point}:${point.startsWith('revert') ? 1 : 1 + Math.floor(random() * 2)}`
        : undefined;
      current = await startExecutorProc({
        id: 'exec-k',
        store: storePath,
        providers,
        journal,
        ...(killAt ? { killAt } : {}),
      });
      const delay = selfKill ? 2500 : 50 + Math.floor(random() * 1200);
      const exited = await Promise.race([
        current.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), delay)),
      ]);
      await killProc(current);
      kills.push(exited ? `self@${killAt}` : `parent@${delay}ms${killAt ? ` (${killAt} not reached)` : ''}`);
    }

    // The final clean run finishes whatever the kills left.
    current = await startExecutorProc({ id: 'exec-k', store: storePath, providers, journal });
    const done = async () => {
      const os = await Promise.all(specs.map((s) => outcomeOf(store, s.actionId)));
      return os.every((o, i) => settled(o, benignCases.has(specs[i]!.caseId)));
    };
    await waitFor(done, 120_000, 'every action settled', 250);
    await stopProc(current);
    current = undefined;

    // The record.
    let executed = 0;
    let failed = 0;
    let rolledBack = 0;
    let reconciled = 0;
    for (const s of specs) {
      const o = await outcomeOf(store, s.actionId);
      expect(o.executed, s.actionId).toBeLessThanOrEqual(1);
      expect(o.rolledBack.length, s.actionId).toBeLessThanOrEqual(1);
      reconciled += o.reconciled;
      if (o.executed === 1) {
        executed += 1;
        expect(
          o.failed.filter((f) => f.data.phase !== 'rollback'),
          s.actionId,
        ).toEqual([]);
        if (benignCases.has(s.caseId)) {
          expect(o.rolledBack, s.actionId).toHaveLength(1);
          rolledBack += 1;
          // Killed between ActionExecuted and ActionVerified, then cleared: the restart rolls it back
          // without probing an effect it is about to undo.
          expect(o.verified, s.actionId).toBeLessThanOrEqual(1);
        } else {
          expect(o.verified, s.actionId).toBe(1);
        }
      } else {
        // Never executed: only because its case was cleared before the executor reached it.
        expect(benignCases.has(s.caseId), s.actionId).toBe(true);
        expect(o.failed.map((f) => f.data.error.message).join(), s.actionId).toContain('resolved benign');
        failed += 1;
      }
    }
    const allExecuted = await store.readAll({ types: ['ActionExecuted'] });
    const executedIds = allExecuted.map((e) => (e.type === 'ActionExecuted' ? e.data.actionId : ''));
    expect(new Set(executedIds).size).toBe(allExecuted.length);

    // Keycloak's own record: each executed action's effect exactly once, each rollback's at most once.
    const effects = effectsByUser(await adminEvents(fx.admin, fx.realm));
    for (const [i, s] of specs.entries()) {
      const o = await outcomeOf(store, s.actionId);
      const e = effects.get(users[i]!.id) ?? {
        logouts: 0,
        disables: 0,
        enables: 0,
        roleRemovals: 0,
        roleGrants: 0,
      };
      const ran = o.executed === 1;
      expect(e.logouts, `${s.actionId} logouts`).toBe(ran ? 1 : 0);
      expect(e.disables, `${s.actionId} disables`).toBe(ran && s.action === 'disable_account' ? 1 : 0);
      expect(e.enables, `${s.actionId} enables`).toBe(
        o.rolledBack.length > 0 && s.action === 'disable_account' ? 1 : 0,
      );
      const user = await fx.admin<{ enabled: boolean }>('GET', `/realms/${fx.realm}/users/${users[i]!.id}`);
      expect(user.enabled, `${s.actionId} enabled`).toBe(
        !(ran && s.action === 'disable_account' && o.rolledBack.length === 0),
      );
    }

    const lines = readJournal(journal);
    const applyStarts = new Map<string, number>();
    for (const l of lines)
      if (l.phase === 'apply-start') applyStarts.set(l.actionId, (applyStarts.get(l.actionId) ?? 0) + 1);
    const reapplied = [...applyStarts.values()].filter((n) => n > 1).length;
    const pids = new Set(lines.map((l) => l.pid)).size;
    console.log(
      `[sigkill] seed ${seed}: ${RUNS} kills (${kills.filter((k) => k.startsWith('self')).length} at a provider-call point, ` +
        `${kills.filter((k) => k.startsWith('parent')).length} at a random time); ${specs.length} actions: ${executed} executed ` +
        `(${reconciled} reconciled after a kill), ${rolledBack} rolled back, ${failed} not executed (case cleared first); ` +
        `apply started again for ${reapplied} action(s) whose first call a kill cut short, each effect still once in Keycloak; ${pids} processes wrote the journal.\n` +
        `  kills: ${kills.join(', ')}`,
    );
    expect(kills).toHaveLength(RUNS);
    expect(reconciled).toBeGreaterThan(0);
    await store.close();
  });
});
