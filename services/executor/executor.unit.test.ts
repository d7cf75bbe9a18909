/**
 * Executor semantics on a real SQLite store (no Keycloak): claims, reconciliation after a crash,
 * takeover of an abandoned claim (and not of a live one), retry budget and circuit breaker counted in
 * real provider attempts, a verdict that lands before execution, rollback order and ownership.
 * The real-Keycloak versions of these live in test/e2e/executor-*.e2e.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExponentialBackoff } from 'cockatiel';
import { afterEach, describe, expect, test } from 'vitest';
import { ProviderError } from '../../platform/errors.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { metrics } from '../../platform/metrics.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import { type ActionType, actionStream, type NewEvent, SCHEMA_VERSION } from '../../schemas/events.ts';
import {
  type ApprovedSpec,
  appendApproved,
  outcomeOf,
  resolveCase,
  settled,
  waitFor,
} from '../../test/support/executor-fixtures.ts';
import { Executor, heartbeatCheckpoint, RetryAfterBackoff } from './executor.ts';
import type {
  ApplyResult,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  RevertResult,
} from './providers/port.ts';

/** tourniquet_executor_errors_total{final="false"} of one provider (retried attempts). */
async function retriedErrors(provider: string): Promise<number> {
  const m = await metrics.getSingleMetric('tourniquet_executor_errors_total')?.get();
  return (m?.values ?? [])
    .filter((v) => v.labels.provider === provider && v.labels.final === 'false')
    .reduce((n, v) => n + v.value, 0);
}

/** An in-memory identity provider that counts every call and can fail, hang or go down on demand. */
class FakeProvider implements IdentityProvider {
  readonly name: string;
  readonly applied = new Map<string, number>();
  readonly reverted: string[] = [];
  readonly calls: Array<{ phase: string; actionId: string }> = [];
  down = false;
  permanent = false;
  /** apply never resolves for these action ids (a process stuck or killed mid-call). */
  hang = new Set<string>();
  applyDelayMs = 0;
  /** Capture takes up to this long (random): two executors reading the same approval overlap. */
  captureJitterMs = 0;
  constructor(name = 'fake') {
    this.name = name;
  }
  private gate(phase: string, a: ProviderAction): void {
    this.calls.push({ phase, actionId: a.actionId });
    if (this.permanent)
      throw new ProviderError('fake: no such user', { retriable: false, provider: this.name });
    if (this.down)
      throw new ProviderError('fake: connection refused', { retriable: true, provider: this.name });
  }
  supports(_action: ActionType): boolean {
    return true;
  }
  async capture(a: ProviderAction): Promise<PriorState> {
    this.gate('capture', a);
    if (this.captureJitterMs) await new Promise((r) => setTimeout(r, Math.random() * this.captureJitterMs));
    return { enabled: true };
  }
  async apply(a: ProviderAction): Promise<ApplyResult> {
    this.gate('apply', a);
    if (this.hang.has(a.actionId)) {
      this.applied.set(a.actionId, (this.applied.get(a.actionId) ?? 0) + 1);
      return new Promise(() => undefined);
    }
    if (this.applyDelayMs) await new Promise((r) => setTimeout(r, this.applyDelayMs));
    this.applied.set(a.actionId, (this.applied.get(a.actionId) ?? 0) + 1);
    return { done: true };
  }
  async isApplied(a: ProviderAction): Promise<boolean> {
    this.gate('isApplied', a);
    return (this.applied.get(a.actionId) ?? 0) > 0;
  }
  async verify(a: ProviderAction): Promise<Probe[]> {
    this.gate('verify', a);
    return [{ probe: 'applied', ok: (this.applied.get(a.actionId) ?? 0) > 0, detail: 'fake' }];
  }
  async revert(a: ProviderAction): Promise<RevertResult> {
    this.gate('revert', a);
    this.reverted.push(a.actionId);
    return { restored: ['enabled=true'], residue: ['access tokens stay valid until expiry (fake)'] };
  }
  count(phase: string): number {
    return this.calls.filter((c) => c.phase === phase).length;
  }
}

const user = (n: number): IdentityRef => ({ provider: 'fake', id: `user-${n}`, type: 'human', tenant: 't1' });
const spec = (n: number, action: ActionType = 'revoke_sessions', k = 1): ApprovedSpec => ({
  identity: user(n),
  action,
  actionId: `act-${n}-${k}`,
  caseId: `case-${n}`,
});

const open: Array<{ close(): Promise<void> }> = [];
const executors: Executor[] = [];
function store(path: string, now?: () => Date): SqliteEventStore {
  const s = new SqliteEventStore({ path, pollMs: 10, durability: 'normal', ...(now ? { now } : {}) });
  open.push(s);
  return s;
}
function executor(opts: ConstructorParameters<typeof Executor>[0]): Executor {
  const e = new Executor({ retry: { initialDelayMs: 5, maxDelayMs: 20 }, ...opts });
  executors.push(e);
  return e;
}
const dbPath = () => join(mkdtempSync(join(tmpdir(), 'tq-exec-')), 'events.db');

afterEach(async () => {
  for (const e of executors.splice(0)) await e.stop();
  for (const s of open.splice(0)) await s.close();
});

describe('Executor', () => {
  test('executes each approved action once, verifies it, and checkpoints past it', async () => {
    const s = store(dbPath());
    const p = new FakeProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x1' });
    await ex.start();
    await appendApproved(s, [spec(1), spec(2), spec(3, 'disable_account')]);
    await waitFor(
      async () =>
        (await Promise.all([1, 2, 3].map((n) => outcomeOf(s, `act-${n}-1`)))).every((o) => settled(o)),
      5000,
      'outcomes',
    );
    for (const n of [1, 2, 3]) {
      const o = await outcomeOf(s, `act-${n}-1`);
      expect(o).toMatchObject({ claims: 1, executed: 1, verified: 1, reconciled: 0 });
      expect(p.applied.get(`act-${n}-1`)).toBe(1);
    }
    await ex.idle();
    await waitFor(() => ex.checkpoint >= ex.position && ex.position > 0, 2000, 'checkpoint');
    expect(await s.getCheckpoint('executor:x1')).toBe(ex.position);
    expect(await s.getCheckpoint(heartbeatCheckpoint('x1'))).toBeGreaterThan(Date.now() - 60_000);
  });

  test('two executors on two connections to one file: one claim, one apply, one ActionExecuted per action', async () => {
    const path = dbPath();
    const s1 = store(path);
    const s2 = store(path);
    const p = new FakeProvider();
    p.applyDelayMs = 2;
    p.captureJitterMs = 30; // both executors capture each action before either claims it: a real race
    const a = executor({ store: s1, providers: { fake: p }, executorId: 'a', concurrency: 4 });
    const b = executor({ store: s2, providers: { fake: p }, executorId: 'b', concurrency: 4 });
    await Promise.all([a.start(), b.start()]);
    const specs = Array.from({ length: 60 }, (_, i) =>
      spec(i % 20, i % 2 ? 'disable_account' : 'revoke_sessions', Math.floor(i / 20)),
    );
    await appendApproved(s1, specs);
    await waitFor(
      async () => (await Promise.all(specs.map((x) => outcomeOf(s1, x.actionId)))).every((o) => settled(o)),
      15_000,
      'all outcomes',
    );
    const owners = new Set<string>();
    for (const x of specs) {
      const o = await outcomeOf(s1, x.actionId);
      expect(o.executed, x.actionId).toBe(1);
      expect(o.claims, x.actionId).toBe(1);
      expect(p.applied.get(x.actionId), x.actionId).toBe(1);
      const claim = o.events.find((e) => e.type === 'ExecutionClaimed');
      if (claim?.type === 'ExecutionClaimed') owners.add(claim.data.executor);
    }
    expect(p.count('apply')).toBe(specs.length);
    expect(owners.size).toBe(2); // both did real work
    // The race was real: both executors captured (most of) the actions; each lost some claims.
    expect(p.count('capture')).toBeGreaterThan(specs.length);
  });

  test('a restart with the same id reconciles its own unfinished claim instead of applying again', async () => {
    const path = dbPath();
    const p = new FakeProvider();
    p.hang.add('act-1-1'); // the first process applies, then "dies" before recording it
    const s1 = store(path);
    const first = new Executor({ store: s1, providers: { fake: p }, executorId: 'x' });
    await first.start();
    await appendApproved(s1, [spec(1)]);
    await waitFor(() => p.applied.get('act-1-1') === 1, 5000, 'first apply');
    // Abandon the first instance without stopping it (a crash): a second one opens the file.
    p.hang.clear();
    const s2 = store(path);
    const second = executor({ store: s2, providers: { fake: p }, executorId: 'x' });
    await second.start();
    await waitFor(async () => settled(await outcomeOf(s2, 'act-1-1')), 5000, 'reconciled outcome');
    const o = await outcomeOf(s2, 'act-1-1');
    expect(o).toMatchObject({ executed: 1, reconciled: 1, claims: 2, verified: 1 });
    expect(p.applied.get('act-1-1')).toBe(1);
    expect(p.count('isApplied')).toBe(1);
  });

  test('a claim whose owner still beats is left alone; once it stops beating it is taken over', async () => {
    const path = dbPath();
    const past = new Date(Date.now() - 10 * 60_000);
    const old = store(path, () => past);
    await appendApproved(old, [spec(1)]);
    // A claim by "ghost", ten minutes old, with a fresh heartbeat: ghost is alive (just slow).
    const claim: NewEvent = {
      id: 'act-1-1-claim-1',
      type: 'ExecutionClaimed',
      stream: actionStream('act-1-1'),
      occurredAt: past.toISOString(),
      causationId: null,
      correlationId: 'case-1',
      schemaVersion: SCHEMA_VERSION,
      data: {
        actionId: 'act-1-1',
        caseId: 'case-1',
        identity: user(1),
        action: 'revoke_sessions',
        executor: 'ghost',
        attempt: 1,
        priorState: { enabled: true },
      },
    };
    await old.append(actionStream('act-1-1'), [claim], 'no_stream');
    const s = store(path);
    await s.saveCheckpoint(heartbeatCheckpoint('ghost'), Date.now());
    const p = new FakeProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x', leaseMs: 1000 });
    await ex.start();
    await ex.idle();
    await ex.sweep();
    expect((await outcomeOf(s, 'act-1-1')).executed).toBe(0);
    expect(p.calls).toHaveLength(0);
    // ghost stops beating: after the lease, the sweep takes over and reconciles from the provider.
    await s.saveCheckpoint(heartbeatCheckpoint('ghost'), Date.now() - 5000);
    await ex.sweep();
    const o = await outcomeOf(s, 'act-1-1');
    expect(o).toMatchObject({ executed: 1, reconciled: 0, claims: 2, verified: 1 });
    expect(p.count('isApplied')).toBe(1);
    expect(p.applied.get('act-1-1')).toBe(1);
  });

  test('a restarted executor still watches claims of others it saw before its restart', async () => {
    const path = dbPath();
    const past = new Date(Date.now() - 10 * 60_000);
    const old = store(path, () => past);
    await appendApproved(old, [spec(1)]);
    await old.append(
      actionStream('act-1-1'),
      [
        {
          id: 'act-1-1-claim-1',
          type: 'ExecutionClaimed',
          stream: actionStream('act-1-1'),
          occurredAt: past.toISOString(),
          causationId: null,
          correlationId: 'case-1',
          schemaVersion: SCHEMA_VERSION,
          data: {
            actionId: 'act-1-1',
            caseId: 'case-1',
            identity: user(1),
            action: 'revoke_sessions',
            executor: 'ghost',
            attempt: 1,
            priorState: {},
          },
        } as NewEvent,
      ],
      'no_stream',
    );
    const s = store(path);
    // This executor already handled (checkpointed past) the approval while ghost held the claim.
    await s.saveCheckpoint('executor:x', await s.headPosition());
    const p = new FakeProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x', leaseMs: 1000 });
    await ex.start();
    await ex.sweep();
    expect((await outcomeOf(s, 'act-1-1')).executed).toBe(1);
  });

  test('retry budget and breaker count real attempts; an open circuit waits instead of failing the queue', async () => {
    const s = store(dbPath());
    const p = new FakeProvider('fake-retrying');
    p.down = true;
    const ex = executor({
      store: s,
      providers: { fake: p },
      executorId: 'x',
      concurrency: 1,
      retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 150 },
    });
    await ex.start();
    await appendApproved(s, [spec(1), spec(2), spec(3)]);
    await waitFor(async () => (await outcomeOf(s, 'act-1-1')).failed.length > 0, 5000, 'first failure');
    const first = await outcomeOf(s, 'act-1-1');
    expect(first.failed[0]!.data).toMatchObject({
      attempts: 3,
      phase: 'apply',
      error: { retriable: true, code: 'PROVIDER_RETRIABLE' },
    });
    expect(first.claims).toBe(0); // failed at capture: nothing was changed
    expect(p.calls.filter((c) => c.actionId === 'act-1-1')).toHaveLength(3);
    // The two attempts that were retried are counted as non-final executor errors.
    expect(await retriedErrors('fake-retrying')).toBeGreaterThanOrEqual(2);
    // The provider comes back while act-2 waits on the open circuit: it proceeds, with its budget intact.
    await new Promise((r) => setTimeout(r, 100));
    p.down = false;
    await waitFor(async () => settled(await outcomeOf(s, 'act-3-1')), 5000, 'act-3');
    for (const id of ['act-2-1', 'act-3-1']) {
      const o = await outcomeOf(s, id);
      expect(o.failed, id).toHaveLength(0);
      expect(o).toMatchObject({ executed: 1, verified: 1 });
    }
  });

  test('a permanent error fails at once, without retries', async () => {
    const s = store(dbPath());
    const p = new FakeProvider();
    p.permanent = true;
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await ex.start();
    await appendApproved(s, [spec(1)]);
    await waitFor(async () => (await outcomeOf(s, 'act-1-1')).failed.length > 0, 5000, 'failure');
    const o = await outcomeOf(s, 'act-1-1');
    expect(o.failed[0]!.data).toMatchObject({
      attempts: 1,
      error: { retriable: false, code: 'PROVIDER_PERMANENT' },
    });
    expect(p.calls).toHaveLength(1);
  });

  test('an action whose case was cleared before the executor reached it is not executed', async () => {
    const s = store(dbPath());
    await appendApproved(s, [spec(1)]);
    await resolveCase(s, user(1), 'case-1', 'benign');
    const p = new FakeProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await ex.start();
    await waitFor(async () => (await outcomeOf(s, 'act-1-1')).failed.length > 0, 5000, 'outcome');
    const o = await outcomeOf(s, 'act-1-1');
    expect(o.executed).toBe(0);
    expect(o.failed[0]!.data.error.message).toContain('resolved benign');
    expect(p.calls).toHaveLength(0);
  });

  test('a benign verdict rolls the case back newest first, with residue, once', async () => {
    const s = store(dbPath());
    const p = new FakeProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await ex.start();
    await appendApproved(s, [
      { ...spec(1, 'revoke_sessions', 1), rollbackNotes: ['revoked sessions cannot be restored'] },
      spec(1, 'disable_account', 2),
    ]);
    await waitFor(
      async () => settled(await outcomeOf(s, 'act-1-2')) && settled(await outcomeOf(s, 'act-1-1')),
      5000,
      'executed',
    );
    await resolveCase(s, user(1), 'case-1', 'benign');
    await waitFor(async () => (await outcomeOf(s, 'act-1-1')).rolledBack.length > 0, 5000, 'rolled back');
    expect(p.reverted).toEqual(['act-1-2', 'act-1-1']);
    const rb = (await outcomeOf(s, 'act-1-1')).rolledBack[0]!.data;
    expect(rb.residue).toEqual([
      'access tokens stay valid until expiry (fake)',
      'revoked sessions cannot be restored',
    ]);
    expect(rb.complete).toBe(false);
  });

  test('with two executors, only the owner of an executed action reverts it', async () => {
    const path = dbPath();
    const s1 = store(path);
    const s2 = store(path);
    const p = new FakeProvider();
    const a = executor({ store: s1, providers: { fake: p }, executorId: 'a' });
    const b = executor({ store: s2, providers: { fake: p }, executorId: 'b' });
    await Promise.all([a.start(), b.start()]);
    const specs = Array.from({ length: 10 }, (_, i) => spec(i));
    await appendApproved(s1, specs);
    await waitFor(
      async () => (await Promise.all(specs.map((x) => outcomeOf(s1, x.actionId)))).every((o) => settled(o)),
      5000,
      'executed',
    );
    for (let i = 0; i < 10; i++) await resolveCase(s1, user(i), `case-${i}`, 'benign');
    await waitFor(
      async () =>
        (await Promise.all(specs.map((x) => outcomeOf(s1, x.actionId)))).every(
          (o) => o.rolledBack.length === 1,
        ),
      5000,
      'rolled back',
    );
    await a.idle();
    await b.idle();
    expect(p.reverted.sort()).toEqual(specs.map((x) => x.actionId).sort());
  });

  test('stop() during an outage leaves the action unfailed, and a restart completes it', async () => {
    const path = dbPath();
    const s = store(path);
    const p = new FakeProvider();
    p.down = true;
    const first = new Executor({
      store: s,
      providers: { fake: p },
      executorId: 'x',
      retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 10_000 },
      concurrency: 1,
    });
    await first.start();
    await appendApproved(s, [spec(1), spec(2)]);
    await waitFor(async () => (await outcomeOf(s, 'act-1-1')).failed.length > 0, 5000, 'first failure');
    await waitFor(() => p.calls.length === 3, 1000, 'no further attempts');
    const stopping = Date.now();
    await first.stop(); // act-2 was waiting on the open circuit
    expect(Date.now() - stopping).toBeLessThan(2000);
    expect((await outcomeOf(s, 'act-2-1')).failed).toHaveLength(0);
    p.down = false;
    const second = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await second.start();
    await waitFor(async () => settled(await outcomeOf(s, 'act-2-1')), 5000, 'act-2');
    expect(await outcomeOf(s, 'act-2-1')).toMatchObject({ executed: 1, verified: 1 });
  });
});

describe('rate limits and outages', () => {
  test('RetryAfterBackoff waits at least what the provider asked, capped, and the exponential delay otherwise', () => {
    const b = new RetryAfterBackoff(new ExponentialBackoff({ initialDelay: 10, maxDelay: 20 }), 1000);
    const ctx = (error: unknown) =>
      ({ attempt: 1, signal: new AbortController().signal, result: { error } }) as never;
    const limited = new ProviderError('429', { retriable: true, provider: 'p', retryAfterMs: 700 });
    expect(b.next(ctx(limited)).duration).toBe(700);
    const huge = new ProviderError('429', { retriable: true, provider: 'p', retryAfterMs: 3_600_000 });
    expect(b.next(ctx(huge)).duration).toBe(1000);
    expect(
      b.next(ctx(new ProviderError('503', { retriable: true, provider: 'p' }))).duration,
    ).toBeLessThanOrEqual(20);
  });

  test('a 429 with Retry-After delays the next attempt by what the provider asked', async () => {
    const s = store(dbPath());
    const p = new FakeProvider();
    const at: number[] = [];
    const capture = p.capture.bind(p);
    p.capture = async (a) => {
      at.push(Date.now());
      if (at.length === 1)
        throw new ProviderError('rate limited', { retriable: true, provider: p.name, retryAfterMs: 400 });
      return capture(a);
    };
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await ex.start();
    await appendApproved(s, [spec(1)]);
    await waitFor(async () => settled(await outcomeOf(s, 'act-1-1')), 5000, 'act-1');
    expect(await outcomeOf(s, 'act-1-1')).toMatchObject({ executed: 1, verified: 1 });
    // The configured backoff is 5-20 ms: only the Retry-After explains a gap of 400 ms or more.
    // Timers may fire a millisecond early by the wall clock: 390 still rules out the 5-20 ms backoff.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(390);
  });

  test("one provider's outage delays only its own actions: another provider's run meanwhile", async () => {
    const s = store(dbPath());
    const down = new FakeProvider('down');
    down.down = true;
    const up = new FakeProvider('up');
    const ex = executor({
      store: s,
      providers: { down, up },
      executorId: 'x',
      concurrency: 1,
      retry: { maxAttempts: 50, initialDelayMs: 20, maxDelayMs: 50 },
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 60_000 },
    });
    await ex.start();
    const on = (provider: string, n: number): ApprovedSpec => ({
      identity: { provider, id: `user-${n}`, type: 'human' },
      action: 'revoke_sessions',
      actionId: `act-${provider}-${n}`,
      caseId: `case-${provider}-${n}`,
    });
    await appendApproved(
      s,
      [1, 2, 3, 4, 5].map((n) => on('down', n)),
    );
    await appendApproved(
      s,
      [1, 2, 3].map((n) => on('up', n)),
    );
    await waitFor(
      async () =>
        (await Promise.all([1, 2, 3].map((n) => outcomeOf(s, `act-up-${n}`)))).every((o) => settled(o)),
      5000,
      'the healthy provider’s actions',
    );
    for (const n of [1, 2, 3])
      expect(await outcomeOf(s, `act-up-${n}`)).toMatchObject({ executed: 1, verified: 1 });
    for (const n of [1, 2, 3, 4, 5]) {
      const o = await outcomeOf(s, `act-down-${n}`);
      expect(o.executed + o.failed.length, `act-down-${n} still waiting`).toBe(0);
    }
  });
});

describe('verdict feedback to the provider', () => {
  class FeedbackProvider extends FakeProvider {
    readonly told: string[] = [];
    failFeedback = false;
    async feedback(identity: IdentityRef, verdict: 'benign' | 'malicious', ctx: { caseId: string }) {
      if (this.failFeedback)
        throw new ProviderError('risk API refused', { retriable: false, provider: this.name });
      this.told.push(`${identity.id}:${verdict}:${ctx.caseId}`);
      return [
        { call: verdict === 'malicious' ? 'confirm compromised' : 'dismiss', ok: true, detail: identity.id },
      ];
    }
  }
  const feedbackOf = async (s: SqliteEventStore, caseId: string) =>
    (await s.readStream(`feedback-${caseId}`)).filter((e) => e.type === 'ProviderFeedbackSent');

  test('malicious: confirmed to the provider; benign: dismissed after the rollback; each recorded once', async () => {
    const s = store(dbPath());
    const p = new FeedbackProvider();
    const ex = executor({ store: s, providers: { fake: p }, executorId: 'x' });
    await ex.start();
    await appendApproved(s, [spec(1), spec(2)]);
    await waitFor(async () => settled(await outcomeOf(s, 'act-2-1')), 5000, 'act-2');
    await resolveCase(s, user(1), 'case-1', 'malicious');
    await resolveCase(s, user(2), 'case-2', 'benign');
    await waitFor(async () => (await feedbackOf(s, 'case-2')).length > 0, 5000, 'feedback');
    await waitFor(async () => (await feedbackOf(s, 'case-1')).length > 0, 5000, 'feedback');
    const [mal] = await feedbackOf(s, 'case-1');
    expect(mal!.data).toMatchObject({
      verdict: 'malicious',
      provider: 'fake',
      calls: [{ call: 'confirm compromised', ok: true }],
    });
    const [ben] = await feedbackOf(s, 'case-2');
    expect(ben!.data).toMatchObject({ verdict: 'benign', calls: [{ call: 'dismiss', ok: true }] });
    // The rollback came first, then the feedback.
    const rb = (await outcomeOf(s, 'act-2-1')).rolledBack[0]!;
    expect(ben!.position).toBeGreaterThan(rb.position);
    expect(p.told.sort()).toEqual(['user-1:malicious:case-1', 'user-2:benign:case-2']);
  });

  test('a refused feedback call is recorded as failed; a provider without feedback records nothing', async () => {
    const s = store(dbPath());
    const p = new FeedbackProvider();
    p.failFeedback = true;
    const plain = new FakeProvider('plain');
    const ex = executor({ store: s, providers: { fake: p, plain }, executorId: 'x' });
    await ex.start();
    await resolveCase(s, user(1), 'case-1', 'malicious');
    const other: IdentityRef = { provider: 'plain', id: 'u9', type: 'human' };
    await resolveCase(s, other, 'case-9', 'malicious');
    await waitFor(async () => (await feedbackOf(s, 'case-1')).length > 0, 5000, 'feedback');
    expect((await feedbackOf(s, 'case-1'))[0]!.data.calls).toEqual([
      { call: 'feedback', ok: false, detail: 'PROVIDER_PERMANENT: risk API refused' },
    ]);
    await ex.idle();
    expect(await feedbackOf(s, 'case-9')).toEqual([]);
  });
});
