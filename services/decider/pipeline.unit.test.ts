/**
 * The decider's I/O shell and RxJS pipeline over the embedded store, in virtual time: approval
 * expiry through ticks, per-identity order under concurrency, and optimistic-concurrency retries.
 */
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WrongExpectedRevisionError } from '../../platform/errors.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import { identityStream, type NewEvent, SCHEMA_VERSION } from '../../schemas/events.ts';
import { catalogueEntry, detection, HOUR, iso, MINUTE, T0 } from '../../test/support/decider-testkit.ts';
import { CatalogueIndex } from './core/catalogue.ts';
import { identityTag } from './core/evolve.ts';
import type { DeciderInput } from './core/types.ts';
import { DeciderEngine, type DecisionResult } from './engine.ts';
import { runDeciderPipeline } from './pipeline.ts';
import { loadDefaultPolicy, parsePolicy } from './policy/load.ts';

/** Lets promise chains (engine.handle, store appends) run to completion. */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** An event store that can hold appends at a gate and counts conflicts (for interleaving tests). */
class GatedStore {
  readonly inner: SqliteEventStore;
  conflicts = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  /** Extra asynchronous turns before each append, drawn from this sequence (deterministic jitter). */
  jitter: number[] = [];
  private j = 0;

  constructor() {
    this.inner = new SqliteEventStore({ path: ':memory:' });
  }

  hold(): void {
    this.gate = new Promise((r) => {
      this.open = r;
    });
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  asStore(): EventStore {
    return new Proxy(this.inner, {
      get: (target, prop, receiver) => {
        if (prop === 'append') {
          return async (
            stream: string,
            events: readonly NewEvent[],
            expected: Parameters<EventStore['append']>[2],
          ) => {
            if (this.gate) await this.gate;
            const turns = this.jitter.length > 0 ? this.jitter[this.j++ % this.jitter.length]! : 0;
            for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
            try {
              return await target.append(stream, events, expected);
            } catch (err) {
              if (err instanceof WrongExpectedRevisionError) this.conflicts += 1;
              throw err;
            }
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as EventStore;
  }
}

const human = (id: string): IdentityRef => ({ provider: 'okta', id, type: 'human' });

function detectionAt(
  identity: IdentityRef,
  atMs: number,
  id: string,
  kind: 'impossible_travel' | 'other' = 'other',
  confidence = 0.2,
): DeciderInput {
  return {
    type: 'detection',
    at: iso(atMs),
    detection: detection({ identity, kind, confidence, atMs, id, source: 'okta' }),
  };
}

async function streamOf(store: EventStore, identity: IdentityRef) {
  return store.readStream(identityStream(identity));
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(opts: { idleGroupMs?: number; tickMs?: number; catalogue?: CatalogueIndex } = {}) {
  const gated = new GatedStore();
  const store = gated.asStore();
  const engine = new DeciderEngine({
    store,
    policy: loadDefaultPolicy(),
    ...(opts.catalogue ? { catalogue: opts.catalogue } : {}),
  });
  await engine.start();
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = T0;
  const pipeline = runDeciderPipeline(engine, {
    scheduler,
    tickMs: opts.tickMs ?? MINUTE,
    ...(opts.idleGroupMs ? { idleGroupMs: opts.idleGroupMs } : {}),
    onTickError: (err) => {
      throw err;
    },
  });
  cleanups.push(
    () => pipeline.stop(),
    () => gated.inner.close(),
  );
  /** Advances virtual time to `ms`, firing every tick and timer due on the way. */
  const advanceTo = async (ms: number) => {
    scheduler.maxFrames = ms;
    scheduler.flush();
    await settle();
  };
  return { gated, store, engine, scheduler, pipeline, advanceTo };
}

describe('approval expiry in virtual time', () => {
  it('a pending analyst approval expires through ticks at its TTL, and ActionExpired is appended to the store', async () => {
    const catalogue = new CatalogueIndex([catalogueEntry('alice', { tier: 'development' })]);
    const { store, pipeline, advanceTo } = await setup({ catalogue, tickMs: MINUTE });
    const alice = human('alice');
    const r = await pipeline.submit(detectionAt(alice, T0, 'd-1', 'impossible_travel', 0.6));
    const proposed = r.events.find((e) => e.type === 'ActionProposed');
    expect(proposed?.data).toMatchObject({
      ruleId: 'analyst-review',
      approval: { mode: 'analyst', expiresAt: iso(T0 + 4 * HOUR) },
    });

    await advanceTo(T0 + 4 * HOUR - MINUTE);
    expect((await streamOf(store, alice)).map((e) => e.type)).not.toContain('ActionExpired');

    await advanceTo(T0 + 4 * HOUR);
    const expired = (await streamOf(store, alice)).filter((e) => e.type === 'ActionExpired');
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({
      occurredAt: iso(T0 + 4 * HOUR),
      data: { expiredAt: iso(T0 + 4 * HOUR) },
    });

    // later ticks do not expire it again
    await advanceTo(T0 + 5 * HOUR);
    expect((await streamOf(store, alice)).filter((e) => e.type === 'ActionExpired')).toHaveLength(1);
  });

  it('an approval given in time stops the clock: no expiry follows', async () => {
    const catalogue = new CatalogueIndex([catalogueEntry('alice', { tier: 'development' })]);
    const { store, pipeline, advanceTo } = await setup({ catalogue });
    const alice = human('alice');
    const r = await pipeline.submit(detectionAt(alice, T0, 'd-1', 'impossible_travel', 0.6));
    const actionId = r.events.find((e) => e.type === 'ActionProposed')!.data;
    await advanceTo(T0 + HOUR);
    const approvedAt = iso(T0 + HOUR);
    await pipeline.submit({
      type: 'approve',
      at: approvedAt,
      identity: alice,
      actionId: (actionId as { actionId: string }).actionId,
      by: { id: 'ana' },
    });
    await advanceTo(T0 + 6 * HOUR);
    expect((await streamOf(store, alice)).map((e) => e.type)).toEqual([
      'DetectionReceived',
      'CaseOpened',
      'ActionProposed',
      'NoActionTaken',
      'ActionApproved',
    ]);
  });
});

describe('per-identity order', () => {
  it('keeps each identity’s inputs in submission order under concurrent submissions for many identities', async () => {
    const { gated, store, pipeline, advanceTo } = await setup({ idleGroupMs: 5 * MINUTE });
    gated.jitter = [0, 3, 1, 0, 5, 2, 0, 0, 4, 1, 7];
    const identities = Array.from({ length: 40 }, (_, i) => human(`user-${i}`));
    const submitted = new Map<string, string[]>();
    const results: Array<Promise<DecisionResult>> = [];
    let t = T0;
    for (let wave = 0; wave < 6; wave++) {
      for (let k = 0; k < 5; k++) {
        for (const [i, identity] of identities.entries()) {
          if ((i + k + wave) % 3 === 0) continue; // uneven load per identity
          t += 1;
          const id = `w${wave}-k${k}-u${i}`;
          submitted.set(identity.id, [...(submitted.get(identity.id) ?? []), id]);
          results.push(pipeline.submit(detectionAt(identity, t, id)));
        }
      }
      // time moves while work is in flight: idle identity groups close and reopen
      await advanceTo(T0 + (wave + 1) * 7 * MINUTE);
    }
    await Promise.all(results);
    for (const identity of identities) {
      const received = (await streamOf(store, identity)).filter((e) => e.type === 'DetectionReceived');
      expect(received.map((e) => (e.data as { detection: { id: string } }).detection.id)).toEqual(
        submitted.get(identity.id),
      );
    }
  });

  it('keeps order when an identity’s group is closed for idleness while its work is still in flight', async () => {
    const { gated, store, pipeline, advanceTo } = await setup({ idleGroupMs: MINUTE });
    const x = human('x');
    gated.hold();
    const first = pipeline.submit(detectionAt(x, T0, 'a1'));
    const second = pipeline.submit(detectionAt(x, T0 + 1, 'a2'));
    await settle();
    await advanceTo(T0 + 2 * MINUTE); // longer than idleGroupMs, with a1 in flight and a2 queued
    const third = pipeline.submit(detectionAt(x, T0 + 2 * MINUTE, 'a3'));
    await settle();
    gated.release();
    await Promise.all([first, second, third]);
    const ids = (await streamOf(store, x))
      .filter((e) => e.type === 'DetectionReceived')
      .map((e) => (e.data as { detection: { id: string } }).detection.id);
    expect(ids).toEqual(['a1', 'a2', 'a3']);
    expect(gated.conflicts).toBe(0); // one writer per identity: nothing raced
  });
});

describe('optimistic concurrency', () => {
  function foreignEvent(identity: IdentityRef, id: string, atMs: number): NewEvent {
    return {
      id,
      type: 'ActionExecuted',
      stream: identityStream(identity),
      occurredAt: iso(atMs),
      causationId: null,
      correlationId: null,
      schemaVersion: SCHEMA_VERSION,
      data: {
        actionId: 'act-elsewhere',
        caseId: 'case-elsewhere',
        identity,
        action: 'revoke_sessions',
        provider: 'dry-run',
        idempotencyKey: 'k-1',
        result: {},
        priorState: {},
        reconciled: false,
      },
    };
  }

  it('a WrongExpectedRevision from a concurrent writer is retried: the decision lands exactly once, after the foreign event', async () => {
    const { gated, store, pipeline } = await setup();
    const alice = human('alice');
    await pipeline.submit(detectionAt(alice, T0, 'd-1', 'other', 0.4));
    // another writer appends to alice's stream behind the decider's back
    await gated.inner.append(identityStream(alice), [foreignEvent(alice, 'foreign-1', T0 + 1)], 'any');
    const r = await pipeline.submit(detectionAt(alice, T0 + MINUTE, 'd-2', 'other', 0.4));
    expect(gated.conflicts).toBe(1);
    // d-2 joins the case: why nothing happened rides on its DetectionReceived
    expect(r.events.map((e) => e.type)).toEqual(['DetectionReceived']);
    expect(r.events[0]).toMatchObject({ data: { noAction: [{ code: 'no_rule' }] } });
    const stream = await streamOf(store, alice);
    expect(stream.map((e) => e.id)).toEqual([
      `det-${identityTag(alice)}-okta:d-1`,
      `case-${identityTag(alice)}-1-opened`,
      `det-${identityTag(alice)}-okta:d-1-no-action`,
      'foreign-1',
      `det-${identityTag(alice)}-okta:d-2`,
    ]);
  });

  function sameDetectionReceived(identity: IdentityRef, input: DeciderInput): NewEvent {
    const d = (input as Extract<DeciderInput, { type: 'detection' }>).detection;
    return {
      id: `det-${identityTag(identity)}-${d.source}:${d.id}`,
      type: 'DetectionReceived',
      stream: identityStream(identity),
      occurredAt: input.at,
      causationId: null,
      correlationId: null,
      schemaVersion: SCHEMA_VERSION,
      data: { detection: d },
    };
  }

  it('when the concurrent writer already recorded the same detection, the retry decides nothing more (exactly once)', async () => {
    const { gated, store, pipeline } = await setup();
    const alice = human('alice');
    await pipeline.submit(detectionAt(alice, T0, 'd-1', 'other', 0.4));
    const input = detectionAt(alice, T0 + MINUTE, 'd-2', 'impossible_travel', 0.6); // would also propose
    await gated.inner.append(
      identityStream(alice),
      [foreignEvent(alice, 'foreign-1', T0 + 1), sameDetectionReceived(alice, input)],
      'any',
    );
    const r = await pipeline.submit(input);
    expect(gated.conflicts).toBe(1);
    expect(r.events).toEqual([]); // seen: the other writer's record stands
    const stream = await streamOf(store, alice);
    expect(stream.filter((e) => e.type === 'DetectionReceived').map((e) => e.id)).toEqual([
      `det-${identityTag(alice)}-okta:d-1`,
      `det-${identityTag(alice)}-okta:d-2`,
    ]);
  });

  it('when the store answers an append from an identical batch it already holds, the engine re-reads the stream instead of trusting its cache', async () => {
    const { gated, store, pipeline } = await setup();
    const alice = human('alice');
    const tag = identityTag(alice);
    await pipeline.submit(detectionAt(alice, T0, 'd-1', 'other', 0.4)); // opens case 1
    const d2 = detectionAt(alice, T0 + MINUTE, 'd-2', 'other', 0.2);
    // another writer resolved case 1 and recorded d-2 (the same batch this engine is about to append)
    const resolved: NewEvent = {
      id: `case-${tag}-1-resolved`,
      type: 'CaseResolved',
      stream: identityStream(alice),
      occurredAt: iso(T0 + 30_000),
      causationId: null,
      correlationId: `case-${tag}-1`,
      schemaVersion: SCHEMA_VERSION,
      data: {
        caseId: `case-${tag}-1`,
        identity: alice,
        verdict: 'benign',
        by: { kind: 'human', id: 'lead' },
      },
    };
    await gated.inner.append(identityStream(alice), [resolved, sameDetectionReceived(alice, d2)], 'any');
    await pipeline.submit(d2);
    const r = await pipeline.submit(detectionAt(alice, T0 + 2 * MINUTE, 'd-3', 'other', 0.4));
    // the case was resolved behind our back: d-3 opens case 2 rather than joining the closed case 1
    expect(r.events.map((e) => e.type)).toEqual(['DetectionReceived', 'CaseOpened', 'NoActionTaken']);
    expect(r.events[1]!.data).toMatchObject({ caseId: `case-${tag}-2` });
    expect((await streamOf(store, alice)).map((e) => e.type)).toEqual([
      'DetectionReceived',
      'CaseOpened',
      'NoActionTaken',
      'CaseResolved',
      'DetectionReceived',
      'DetectionReceived',
      'CaseOpened',
      'NoActionTaken',
    ]);
  });

  it('the cached state follows the store after a retry: the next decision appends without conflict', async () => {
    const { gated, pipeline } = await setup();
    const alice = human('alice');
    await pipeline.submit(detectionAt(alice, T0, 'd-1', 'other', 0.4));
    await gated.inner.append(identityStream(alice), [foreignEvent(alice, 'foreign-1', T0 + 1)], 'any');
    await pipeline.submit(detectionAt(alice, T0 + MINUTE, 'd-2', 'other', 0.4));
    await pipeline.submit(detectionAt(alice, T0 + 2 * MINUTE, 'd-3', 'other', 0.4));
    expect(gated.conflicts).toBe(1);
  });
});

describe('policy changes', () => {
  it('a newly activated policy sees the evidence a replay would: cached states are rebuilt under it', async () => {
    const { engine, pipeline } = await setup();
    const alice = human('alice');
    const strict = parsePolicy(`
id: strict
version: "1"
rules:
  - id: travel
    when: { kinds: [impossible_travel], minConfidence: 0.9, count: 2, window: 1h }
    ladder: [{ action: force_step_up, approval: analyst }]
`);
    const looser = parsePolicy(`
id: strict
version: "2"
rules:
  - id: travel
    when: { kinds: [impossible_travel], minConfidence: 0.6, count: 2, window: 1h }
    ladder: [{ action: force_step_up, approval: analyst }]
`);
    engine.setPolicy(strict);
    // below the strict floor: remembered in the stream, but the strict policy's state need not keep it
    await pipeline.submit(detectionAt(alice, T0, 'd-1', 'impossible_travel', 0.7));
    engine.setPolicy(looser);
    const r = await pipeline.submit(detectionAt(alice, T0 + MINUTE, 'd-2', 'impossible_travel', 0.7));
    expect(r.events.find((e) => e.type === 'ActionProposed')?.data).toMatchObject({
      ruleId: 'travel',
      detectionIds: ['d-1', 'd-2'],
      policyVersion: '2',
    });
  });
});
