/**
 * Keycloak becomes unreachable mid-run, then comes back.
 *
 * How: SIGSTOP to Keycloak's process group (SIGCONT to resume), not `scripts/keycloak.sh down` / `up`,
 * on a Keycloak of this test's own (startPrivateKeycloak: own run directory, free ports): the shared
 * server keeps serving the other test files meanwhile.
 * A stopped JVM keeps its port: connections are accepted by the kernel and then nothing answers, the
 * nastiest kind of outage (timeouts rather than quick refusals). `down` would also wipe Keycloak's run
 * data (the test realm with it) and a cold `up` costs 20–70 s on this machine. The test always resumes
 * Keycloak: in a finally block and in a process exit hook.
 *
 * What must hold, with a small retry budget (3 attempts, 1.5 s timeout, breaker after 3 failures,
 * half-open after 1 s): an action that meets the outage is retried and then fails with ActionFailed
 * after exactly its budget of real attempts; it changed nothing in Keycloak; actions waiting on the open
 * circuit do not burn their budget and proceed once Keycloak answers again; no action is lost.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildProviders, parseProvidersConfig } from '../../app/providers-config.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import { Executor } from '../../services/executor/executor.ts';
import {
  type ApprovedSpec,
  adminEvents,
  appendApproved,
  createUsers,
  effectsByUser,
  enableAdminEvents,
  outcomeOf,
  settled,
  waitFor,
} from '../support/executor-fixtures.ts';
import {
  createTestRealm,
  keycloakUnavailableReason,
  type PrivateKeycloak,
  startPrivateKeycloak,
  type TestRealm,
} from '../support/keycloak.ts';

const unavailable =
  keycloakUnavailableReason() ??
  (process.env.KEYCLOAK_URL
    ? 'KEYCLOAK_URL points at a Keycloak this test cannot suspend (no local process)'
    : null);
if (unavailable) console.warn(`[executor-keycloak-outage.e2e] SKIPPED: ${unavailable}`);

/** Signals this test's Keycloak's whole process group (kc.sh and its JVM). */
function signalKeycloak(kc: PrivateKeycloak, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pid = Number(readFileSync(kc.pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad pid in ${kc.pidFile}`);
  // scripts/keycloak.sh starts kc.sh with setsid: its pid leads the group that holds the JVM.
  process.kill(-pid, signal);
}

const MAX_ATTEMPTS = 3;

describe.skipIf(unavailable !== null)('Keycloak unreachable mid-run (SIGSTOP / SIGCONT)', () => {
  let kc: PrivateKeycloak;
  let fx: TestRealm;
  let stopped = false;
  const resume = () => {
    if (stopped) {
      signalKeycloak(kc, 'SIGCONT');
      stopped = false;
    }
  };

  beforeAll(async () => {
    kc = await startPrivateKeycloak();
    if (!existsSync(kc.pidFile)) throw new Error(`no ${kc.pidFile}: the private Keycloak has no pid file`);
    fx = await createTestRealm(kc, 'tq-outage');
    await enableAdminEvents(fx.admin, fx.realm);
    process.on('exit', resume);
  }, 900_000);

  afterAll(async () => {
    resume();
    process.off('exit', resume);
    await fx?.cleanup();
    await kc?.down();
  }, 120_000);

  test('retries, ActionFailed after the budget, nothing lost, pending actions proceed after recovery', {
    timeout: 240_000,
  }, async () => {
    const users = await createUsers(fx.admin, fx.realm, 24, { prefix: 'o' });
    const store = new SqliteEventStore({
      path: join(mkdtempSync(join(tmpdir(), 'tq-outage-')), 'events.db'),
      pollMs: 20,
    });
    const config = parseProvidersConfig({
      providers: {
        keycloak: {
          type: 'keycloak',
          baseUrl: kc.baseUrl,
          adminRealm: kc.admin.realm,
          username: kc.admin.username,
          password: kc.admin.password,
          timeoutMs: 1500,
        },
      },
      executor: {
        retry: { maxAttempts: MAX_ATTEMPTS, initialDelayMs: 100, maxDelayMs: 400 },
        breaker: { consecutiveFailures: 3, halfOpenAfterMs: 1000 },
        concurrency: 4,
      },
    });
    const executor = new Executor({
      store,
      providers: buildProviders(config, tmpdir()),
      executorId: 'outage',
      ...config.executor,
    });
    await executor.start();
    const batch = (from: number, to: number): ApprovedSpec[] =>
      users.slice(from, to).map((u) => {
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
          action: 'revoke_sessions',
        };
      });
    const settle = (specs: ApprovedSpec[], timeoutMs: number) =>
      waitFor(
        async () =>
          (await Promise.all(specs.map((s) => outcomeOf(store, s.actionId)))).every((o) => settled(o)),
        timeoutMs,
        'outcomes',
        100,
      );

    try {
      // Before: Keycloak answers, actions execute.
      const before = batch(0, 8);
      await appendApproved(store, before);
      await settle(before, 60_000);

      // Outage: Keycloak stops answering while new approvals arrive.
      signalKeycloak(kc, 'SIGSTOP');
      stopped = true;
      const stoppedAt = Date.now();
      const during = batch(8, 16);
      await appendApproved(store, during);
      await waitFor(
        async () =>
          (await Promise.all(during.map((s) => outcomeOf(store, s.actionId)))).some(
            (o) => o.failed.length > 0,
          ),
        60_000,
        'the first ActionFailed',
        100,
      );
      const failedAt = Date.now();
      resume();
      const resumedAt = Date.now();

      // After: pending actions proceed; new ones too.
      const after = batch(16, 24);
      await appendApproved(store, after);
      await settle([...during, ...after], 90_000);

      const failedIds: string[] = [];
      for (const s of during) {
        const o = await outcomeOf(store, s.actionId);
        if (o.failed.length > 0) {
          failedIds.push(s.actionId);
          const f = o.failed[0]!;
          expect(f.data, s.actionId).toMatchObject({
            phase: 'apply',
            attempts: MAX_ATTEMPTS,
            error: { code: 'PROVIDER_RETRIABLE', retriable: true },
          });
          expect(Date.parse(f.recordedAt)).toBeGreaterThanOrEqual(stoppedAt);
          expect(Date.parse(f.recordedAt)).toBeLessThanOrEqual(resumedAt);
          expect(o.claims, s.actionId).toBe(0); // it failed reading the prior state: nothing was changed
          expect(o.executed).toBe(0);
        } else {
          expect(o, s.actionId).toMatchObject({ executed: 1, verified: 1 });
        }
      }
      for (const s of [...before, ...after]) {
        expect(await outcomeOf(store, s.actionId), s.actionId).toMatchObject({
          executed: 1,
          verified: 1,
          failed: [],
        });
      }
      expect(failedIds.length).toBeGreaterThan(0);
      expect(failedIds.length).toBeLessThan(during.length); // the rest waited and proceeded

      // Keycloak's own record agrees: executed actions logged their user out once, failed ones not at all.
      const effects = effectsByUser(await adminEvents(fx.admin, fx.realm));
      for (const [i, u] of users.entries()) {
        const failed = failedIds.includes(`act-${u.username}`);
        expect(effects.get(u.id)?.logouts ?? 0, `${u.username} (${i})`).toBe(failed ? 0 : 1);
      }
      console.log(
        `[outage] Keycloak stopped ${resumedAt - stoppedAt} ms (first ActionFailed after ${failedAt - stoppedAt} ms): ` +
          `${failedIds.length}/${during.length} actions approved during the outage failed after ${MAX_ATTEMPTS} attempts, ` +
          `${during.length - failedIds.length} waited and executed after recovery; all ${before.length + after.length} others executed`,
      );
    } finally {
      resume();
      await executor.stop();
      await store.close();
    }
    // Keycloak is up again.
    expect((await fetch(`${kc.baseUrl}/realms/master`)).status).toBe(200);
  });
});
