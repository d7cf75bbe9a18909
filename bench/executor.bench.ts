/**
 * Executor against the local Keycloak (scripts/keycloak.sh; started here if it is not running).
 *
 * (a) Detection-to-enforcement latency in embedded mode: DeciderService + Executor + SqliteEventStore
 *     (durability full) in one process, detections offered through the ingest gateway at a steady
 *     rate (default 50/s for 20 s), twice: `all_actionable`, where every detection is a known_compromise
 *     (confidence 0.95) of its own Keycloak user and so becomes an automatic revoke_sessions (50 actions/s,
 *     the worst case), and `one_in_5`, where one detection in five does (10 actions/s) and the rest are
 *     weak signals that are only recorded. Latency runs from the detection being accepted (the ingest receipt, i.e. the 202) to ActionExecuted
 *     and to ActionVerified (probes: sessions gone, not-before advanced), by the store's recordedAt.
 *     The blast-radius budgets of the default policy (at most 50 automatic actions per hour per provider)
 *     are lifted for the run: with them, everything after the 50th detection would wait for an analyst;
 *     so is the storm guard, which would hold the rule from its 10th identity in an hour on.
 * (b) Executor throughput on a backlog: N approved revoke_sessions already in the store, the executor
 *     started on them; actions/s to the last ActionVerified. The same with the dry-run provider shows
 *     what the executor and the durable store cost on their own.
 *
 * Settings (env): TQ_BENCH_RATE (50), TQ_BENCH_SECONDS (20), TQ_BENCH_BACKLOG (400),
 * TQ_BENCH_CONCURRENCY (8, the executor's default). Skips with a message when Keycloak cannot run.
 * Run alone: npm run bench -- executor
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProviders, parseProvidersConfig } from '../app/providers-config.ts';
import { InProcessBus } from '../platform/bus/in-process.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { type IdentityRef, NormalizedDetection } from '../schemas/detection.ts';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import { Executor } from '../services/executor/executor.ts';
import { DryRunProvider } from '../services/executor/providers/dry-run.ts';
import { BusIngestGateway } from '../services/ingest/gateway.ts';
import { type ApprovedSpec, appendApproved } from '../test/support/executor-fixtures.ts';
import {
  createTestRealm,
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
  type TestRealm,
} from '../test/support/keycloak.ts';
import { machineLoad } from './lib.ts';

const num = (k: string, d: number) => {
  const v = Number(process.env[k]);
  return Number.isFinite(v) && v > 0 ? v : d;
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Bulk-creates users through Keycloak's partial import (one request per 500). */
async function importUsers(fx: TestRealm, prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
  for (let i = 0; i < names.length; i += 500) {
    await fx.admin('POST', `/realms/${fx.realm}/partialImport`, {
      ifResourceExists: 'SKIP',
      users: names
        .slice(i, i + 500)
        .map((username) => ({ username, enabled: true, email: `${username}@example.test` })),
    });
  }
  return names;
}

function providers(kc: KeycloakHandle) {
  return buildProviders(
    parseProvidersConfig({
      providers: {
        keycloak: {
          type: 'keycloak',
          baseUrl: kc.baseUrl,
          adminRealm: kc.admin.realm,
          username: kc.admin.username,
          password: kc.admin.password,
        },
      },
    }),
    tmpdir(),
  );
}

async function steadyLatency(
  kc: KeycloakHandle,
  fx: TestRealm,
  opts: { rate: number; seconds: number; concurrency: number; every: number; label: string },
): Promise<Record<string, number>> {
  const { rate, seconds, concurrency, every, label } = opts;
  const total = Math.round(rate * seconds);
  const actionable = Math.ceil(total / every);
  const users = await importUsers(fx, `lat${every}-`, actionable);
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-exec-'));
  const store = new SqliteEventStore({ path: join(dir, 'events.db') });
  const bus = new InProcessBus();
  const base = loadDefaultPolicy();
  // a steady load of distinct identities from one rule is what is measured, not a misfiring rule: no
  // budgets and no storm hold (which would hold the rule from its 10th identity on)
  const guards = {
    ...base.policy.guards,
    budgets: [],
    storm: { ...base.policy.guards.storm, enabled: false },
  };
  const policy = { ...base, policy: { ...base.policy, guards } };
  const decider = new DeciderService({ store, bus, policy });
  await decider.start();
  const executor = new Executor({ store, providers: providers(kc), executorId: 'bench', concurrency });
  await executor.start();
  const ingest = new BusIngestGateway(bus);

  const acceptedAt = new Map<string, number>(); // identity id → ms
  const acceptMs: number[] = [];
  const started = Date.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Every `every`-th detection is a known compromise of its own user (→ revoke_sessions); the others
    // are weak signals (below the case floor) about other identities: recorded, nothing to enforce.
    const acts = i % every === 0;
    const identity: IdentityRef = acts
      ? { provider: 'keycloak', id: users[i / every]!, type: 'human', tenant: fx.realm }
      : { provider: 'keycloak', id: `noise-${i % 997}`, type: 'human', tenant: fx.realm };
    const detection = NormalizedDetection.parse({
      id: `bench-${label}-${i}`,
      source: 'okta',
      kind: acts ? 'known_compromise' : 'other',
      confidence: acts ? 0.95 : 0.2,
      severity: acts ? 'critical' : 'low',
      identity,
      occurredAt: new Date().toISOString(),
    });
    const sent = Date.now();
    sends.push(
      ingest.accept([detection]).then(([receipt]) => {
        if (receipt?.status !== 'accepted')
          throw new Error(`detection ${i} not accepted: ${JSON.stringify(receipt)}`);
        const now = Date.now();
        if (acts) acceptedAt.set(identity.id, now);
        acceptMs.push(now - sent);
      }),
    );
  }
  await Promise.all(sends);
  const offeredFor = Date.now() - started;

  // Wait for the last verification (or give up after 5 minutes: the numbers then say so).
  const deadline = Date.now() + 300_000;
  let verified = 0;
  while (Date.now() < deadline) {
    verified = (await store.readAll({ types: ['ActionVerified'] })).length;
    const failed = (await store.readAll({ types: ['ActionFailed'] })).length;
    if (verified + failed >= actionable) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const drainedAt = Date.now();
  const lat = (type: 'ActionExecuted' | 'ActionVerified') =>
    store.readAll({ types: [type] }).then((events) =>
      events
        .map((e) => {
          const id = (e.data as { identity: IdentityRef }).identity.id;
          return Date.parse(e.recordedAt) - (acceptedAt.get(id) ?? Number.NaN);
        })
        .filter((x) => Number.isFinite(x))
        .sort((a, b) => a - b),
    );
  const executed = await lat('ActionExecuted');
  const verifiedLat = await lat('ActionVerified');
  const failed = (await store.readAll({ types: ['ActionFailed'] })).length;
  acceptMs.sort((a, b) => a - b);

  await executor.stop();
  await decider.stop();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const k = `executor.steady.${label}`;
  return {
    [`${k}.offered (detections/s)`]: Math.round((total / offeredFor) * 1000 * 10) / 10,
    [`${k}.detections`]: total,
    [`${k}.actions (auto revoke_sessions)`]: actionable,
    [`${k}.executed`]: executed.length,
    [`${k}.failed`]: failed,
    [`${k}.accept.p50 (ms)`]: percentile(acceptMs, 50),
    [`${k}.detection_to_executed.p50 (ms)`]: percentile(executed, 50),
    [`${k}.detection_to_executed.p99 (ms)`]: percentile(executed, 99),
    [`${k}.detection_to_verified.p50 (ms)`]: percentile(verifiedLat, 50),
    [`${k}.detection_to_verified.p99 (ms)`]: percentile(verifiedLat, 99),
    [`${k}.drain_after_last_detection (ms)`]: drainedAt - started - offeredFor,
  };
}

/** The executor and the durable store alone (dry-run provider): what is left when the provider is free. */
async function dryRunThroughput(n: number, concurrency: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-exec-'));
  const store = new SqliteEventStore({ path: join(dir, 'events.db') });
  await appendApproved(
    store,
    Array.from({ length: n }, (_, i) => ({
      identity: { provider: 'dry', id: `u${i}`, type: 'human' as const },
      action: 'revoke_sessions' as const,
      actionId: `act-${i}`,
      caseId: `case-${i}`,
    })),
  );
  const executor = new Executor({
    store,
    providers: { '*': new DryRunProvider() },
    executorId: 'bench-dry',
    concurrency,
  });
  const started = Date.now();
  await executor.start();
  while ((await store.readAll({ types: ['ActionVerified'] })).length < n && Date.now() - started < 120_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ms = Date.now() - started;
  await executor.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { [`executor.backlog.dry-run.c${concurrency} (actions/s)`]: Math.round((n / ms) * 1000) };
}

async function backlogThroughput(
  kc: KeycloakHandle,
  fx: TestRealm,
  n: number,
  concurrency: number,
): Promise<Record<string, number>> {
  const users = await importUsers(fx, 'blg', n);
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-exec-'));
  const store = new SqliteEventStore({ path: join(dir, 'events.db') });
  const specs: ApprovedSpec[] = users.map((u) => ({
    identity: { provider: 'keycloak', id: u, type: 'human', tenant: fx.realm },
    action: 'revoke_sessions',
    actionId: `act-${u}`,
    caseId: `case-${u}`,
  }));
  await appendApproved(store, specs);
  const executor = new Executor({
    store,
    providers: providers(kc),
    executorId: 'bench-backlog',
    concurrency,
  });
  const started = Date.now();
  await executor.start();
  let firstExecutedAt = 0;
  for (;;) {
    const executed = (await store.readAll({ types: ['ActionExecuted'] })).length;
    if (executed > 0 && !firstExecutedAt) firstExecutedAt = Date.now();
    const done = (await store.readAll({ types: ['ActionVerified', 'ActionFailed'] })).length;
    if (done >= n || Date.now() - started > 300_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const ms = Date.now() - started;
  const verified = (await store.readAll({ types: ['ActionVerified'] })).length;
  await executor.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    'executor.backlog.actions': n,
    'executor.backlog.verified': verified,
    [`executor.backlog.throughput.c${concurrency} (actions/s)`]: Math.round((verified / ms) * 1000 * 10) / 10,
  };
}

export async function benchExecutor(): Promise<Record<string, number>> {
  const reason = keycloakUnavailableReason();
  if (reason) {
    console.log(`executor bench SKIPPED: ${reason}`);
    return {};
  }
  let kc: KeycloakHandle;
  try {
    kc = await startKeycloak();
  } catch (err) {
    console.log(
      `executor bench SKIPPED: Keycloak could not be reached or started: ${(err as Error).message.split('\n')[0]}`,
    );
    return {};
  }
  const rate = num('TQ_BENCH_RATE', 50);
  const seconds = num('TQ_BENCH_SECONDS', 20);
  const backlog = num('TQ_BENCH_BACKLOG', 400);
  const concurrency = num('TQ_BENCH_CONCURRENCY', 8);
  let fx: TestRealm | undefined;
  try {
    fx = await createTestRealm(kc, 'tq-bench');
    const load = machineLoad();
    const all = await steadyLatency(kc, fx, {
      rate,
      seconds,
      concurrency,
      every: 1,
      label: 'all_actionable',
    });
    const mix = await steadyLatency(kc, fx, { rate, seconds, concurrency, every: 5, label: 'one_in_5' });
    const throughput = await backlogThroughput(kc, fx, backlog, concurrency);
    const dry = await dryRunThroughput(2000, concurrency);
    return {
      ...all,
      ...mix,
      ...throughput,
      ...dry,
      'machine.load1 (at start)': load.load1,
      'machine.cpus': load.cpus,
    };
  } finally {
    await fx?.cleanup();
    await stopKeycloak(kc);
  }
}
