/**
 * The KurrentDB adapter over an in-process fake of the client: runs everywhere and exercises the
 * adapter's own logic (expected-revision mapping, exclusive/inclusive position handling, filtered
 * reads, subscription drop → resume with backoff, checkpoints). The fake models the server behaviour
 * the adapter relies on — byte-offset positions with gaps, system events and `$>` links in `$all`,
 * inclusive reads, exclusive subscriptions, idempotent appends by event UUID, a read from the middle
 * of a record that silently returns nothing — but it is NOT the server: kurrentdb.int.test.ts runs the
 * contract against a real KurrentDB wherever Docker is available.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { safeParseDetection } from '../../schemas/detection.ts';
import { eventStoreContract, sampleEvent } from '../../test/contract/eventstore.contract.ts';
import { hostileDetection, receivedEvent } from '../../test/support/hostile-input.ts';
import { TourniquetError, WrongExpectedRevisionError } from '../errors.ts';
import {
  CHECKPOINT_EVENT_TYPE,
  type KdbEventData,
  type KdbFilter,
  type KdbPosition,
  type KdbReadPosition,
  type KdbResolvedEvent,
  type KdbStreamState,
  type KdbSubscription,
  type KurrentDbClientLike,
  KurrentDbEventStore,
} from './kurrentdb.ts';
import { detectionWithRaw } from './raw-records.ts';

interface Rec {
  position: number;
  streamId: string;
  revision: bigint;
  type: string;
  id: string;
  data: unknown;
  metadata: unknown;
  created: Date;
}

function clientError(type: string, message = type, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { type, ...extra });
}

/** A string as it comes back after a trip through UTF-8 (lone surrogates become U+FFFD). */
const wire = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

const posOf = (p: KdbReadPosition): number | 'start' | 'end' =>
  typeof p === 'string' ? p : Number(p.commit);

class FakeSubscription implements KdbSubscription {
  private readonly fake: FakeKurrentDb;
  private readonly from: number;
  private readonly filter: KdbFilter | undefined;
  private failure: unknown;
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(fake: FakeKurrentDb, from: number, filter: KdbFilter | undefined, failure?: unknown) {
    this.fake = fake;
    this.from = from;
    this.filter = filter;
    this.failure = failure;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<KdbResolvedEvent> {
    let after = this.from;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return;
      const next = this.fake.records.find((r) => r.position > after && this.fake.matches(r, this.filter));
      if (next) {
        after = next.position;
        yield this.fake.resolved(next);
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.fake.waiters.add(resolve);
      });
    }
  }

  drop(err: unknown): void {
    this.failure = err;
    this.wake?.();
  }

  async unsubscribe(): Promise<void> {
    this.ended = true;
    this.fake.subscriptions.delete(this);
    this.wake?.();
  }
}

class FakeKurrentDb implements KurrentDbClientLike {
  readonly records: Rec[] = [];
  readonly streams = new Map<string, Rec[]>();
  readonly metadata = new Map<string, { maxCount?: number }>();
  readonly subscriptions = new Set<FakeSubscription>();
  readonly waiters = new Set<() => void>();
  /** Subscriptions the adapter asked for a position that is not a record's: must stay empty. */
  readonly violations: string[] = [];
  subscribeCalls = 0;
  /** When set, every new subscription fails at once with this error. */
  failSubscriptions: unknown;
  private next = 1_000;

  constructor() {
    this.write('$settings', '$settings', {}, {}, 'settings'); // the log never starts with our events
  }

  matches(r: Rec, filter: KdbFilter | undefined): boolean {
    return !filter || new RegExp(filter.regex).test(filter.filterOn === 'eventType' ? r.type : r.streamId);
  }

  resolved(r: Rec): KdbResolvedEvent {
    const position: KdbPosition = { commit: BigInt(r.position), prepare: BigInt(r.position) };
    return {
      event: {
        ...r,
        data: structuredClone(r.data),
        metadata: structuredClone(r.metadata),
        isJson: true,
        position,
      },
      commitPosition: position.commit,
    };
  }

  private isRecord(n: number): boolean {
    return this.records.some((r) => r.position === n);
  }

  private write(name: string, type: string, data: unknown, metadata: unknown, id: string): Rec {
    // What the server keeps is what crossed the wire: names as UTF-8 (gRPC strings), data and
    // metadata as UTF-8 JSON bytes. Text that is not well-formed would come back changed.
    const streamId = wire(name);
    const s = this.streams.get(streamId) ?? [];
    const rec: Rec = {
      position: this.next,
      streamId,
      revision: BigInt(s.length),
      type: wire(type),
      id,
      data: JSON.parse(wire(JSON.stringify(data))),
      metadata: JSON.parse(wire(JSON.stringify(metadata))),
      created: new Date(),
    };
    this.next += 97 + JSON.stringify(data).length; // byte offsets: positions have gaps
    s.push(rec);
    this.streams.set(streamId, s);
    this.records.push(rec);
    return rec;
  }

  async appendToStream(
    streamName: string,
    events: KdbEventData[],
    options: { streamState?: KdbStreamState; batchAppendSize?: number } = {},
  ): Promise<{ success: boolean; nextExpectedRevision: bigint; position?: KdbPosition }> {
    await Promise.resolve(); // let concurrent appends interleave like network calls
    const state = options.streamState ?? 'any';
    const existing = this.streams.get(streamName) ?? [];
    const current = existing.length - 1;
    const first = existing.findIndex((r) => r.id === events[0]!.id);
    if (first >= 0) {
      const same = events.every((e, i) => existing[first + i]?.id === e.id);
      const atThatPoint =
        state === 'any' ||
        state === 'stream_exists' ||
        (state === 'no_stream' && first === 0) ||
        (typeof state === 'bigint' && state === BigInt(first - 1));
      if (same && atThatPoint)
        return { success: true, nextExpectedRevision: BigInt(first + events.length - 1) };
    }
    const ok =
      state === 'any' ||
      (state === 'no_stream' && current < 0) ||
      (state === 'stream_exists' && current >= 0) ||
      (typeof state === 'bigint' && state === BigInt(current));
    if (!ok) {
      throw clientError('wrong-expected-version', 'WrongExpectedVersion', {
        streamName,
        expectedState: state,
        actualState: current < 0 ? 'no_stream' : BigInt(current),
      });
    }
    const written = events.map((e) => this.write(streamName, e.type, e.data, e.metadata, e.id));
    if (current < 0 && !streamName.startsWith('$')) {
      // like the $by_category standard projection: a system link event in $all
      this.write(`$ce-${streamName.split('-')[0]}`, '$>', `0@${streamName}`, {}, `link-${streamName}`);
    }
    for (const w of this.waiters) w();
    this.waiters.clear();
    const p = BigInt(written[0]!.position); // pessimistic: the first event's position
    return {
      success: true,
      nextExpectedRevision: BigInt(current + events.length),
      position: { commit: p, prepare: p },
    };
  }

  async *readStream(
    streamName: string,
    options: {
      fromRevision?: 'start' | 'end' | bigint;
      maxCount?: number | bigint;
      direction?: 'forwards' | 'backwards';
    } = {},
  ): AsyncGenerator<KdbResolvedEvent> {
    await Promise.resolve();
    const s = this.streams.get(streamName);
    if (!s) throw Object.assign(clientError('stream-not-found'), { name: 'StreamNotFoundError' });
    const max = Number(options.maxCount ?? Number.MAX_SAFE_INTEGER);
    const list =
      options.direction === 'backwards'
        ? [...s]
            .reverse()
            .filter((r) => options.fromRevision === 'end' || r.revision <= BigInt(options.fromRevision ?? 0))
        : s.filter(
            (r) =>
              options.fromRevision === undefined ||
              options.fromRevision === 'start' ||
              r.revision >= BigInt(options.fromRevision as bigint),
          );
    for (const r of list.slice(0, max)) yield this.resolved(r);
  }

  async *readAll(
    options: {
      fromPosition?: KdbReadPosition;
      maxCount?: number | bigint;
      direction?: 'forwards' | 'backwards';
      filter?: KdbFilter;
    } = {},
  ): AsyncGenerator<KdbResolvedEvent> {
    await Promise.resolve();
    const from = posOf(options.fromPosition ?? 'start');
    let max = Number(options.maxCount ?? Number.MAX_SAFE_INTEGER);
    if (options.direction === 'backwards') {
      for (const r of [...this.records].reverse()) {
        if (from !== 'end' && from !== 'start' && r.position >= from) continue;
        if (!this.matches(r, options.filter)) continue;
        if (max-- <= 0) return;
        yield this.resolved(r);
      }
      return;
    }
    // The worst case of a read from the middle of a record: nothing at all, no error.
    if (typeof from === 'number' && !this.isRecord(from)) return;
    for (const r of this.records) {
      if (typeof from === 'number' && r.position < from) continue;
      if (!this.matches(r, options.filter)) continue;
      if (max-- <= 0) return;
      yield this.resolved(r);
    }
  }

  subscribeToAll(options: { fromPosition?: KdbReadPosition; filter?: KdbFilter } = {}): KdbSubscription {
    this.subscribeCalls += 1;
    const from = posOf(options.fromPosition ?? 'start');
    let failure = this.failSubscriptions;
    if (typeof from === 'number' && !this.isRecord(from)) {
      this.violations.push(`subscribeToAll from ${from}`);
      failure = clientError('invalid-argument', `not a record position: ${from}`);
    }
    const sub = new FakeSubscription(
      this,
      from === 'start' || from === 'end' ? 0 : from,
      options.filter,
      failure,
    );
    this.subscriptions.add(sub);
    return sub;
  }

  /** Drops every open subscription, as a server restart or a network failure would. */
  dropAll(err: unknown = clientError('unavailable', 'connection reset')): void {
    for (const s of this.subscriptions) s.drop(err);
    this.subscriptions.clear();
  }

  async setStreamMetadata(streamName: string, metadata: { maxCount?: number }): Promise<unknown> {
    this.metadata.set(streamName, metadata);
    return {};
  }

  async dispose(): Promise<void> {}
}

function waitFor(pred: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error('timed out waiting'));
      setTimeout(tick, 5);
    };
    tick();
  });
}

const shared = new FakeKurrentDb();
eventStoreContract(
  'kurrentdb adapter over an in-process fake client',
  async () => new KurrentDbEventStore(shared),
  {
    async alter(_store, sha256, body) {
      const rec = shared.streams.get(`raw-record-${sha256}`)?.[0];
      if (!rec) throw new Error(`no raw record ${sha256} in the fake`);
      rec.data = { body };
    },
  },
);

describe('KurrentDbEventStore over the fake client', () => {
  const fast = { reconnect: { initialDelayMs: 2, maxDelayMs: 10, maxAttempts: 3 } };
  const stores: KurrentDbEventStore[] = [];
  const open = (fake: FakeKurrentDb, opts = {}) => {
    const s = new KurrentDbEventStore(fake, { ...fast, ...opts });
    stores.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('reports the last event position of a multi-event append and of an idempotent retry', async () => {
    const fake = new FakeKurrentDb();
    const store = open(fake);
    const events = [0, 1, 2].map((n) => sampleEvent('control-m', n, 'r'));
    const a = await store.append('control-m', events, 'no_stream');
    const last = fake.streams.get('control-m')![2]!;
    expect(a).toEqual({ nextRevision: 2, position: last.position });
    const b = await store.append('control-m', events, 'no_stream');
    expect(b).toEqual(a);
    expect(fake.streams.get('control-m')).toHaveLength(3);
  });

  it('maps a conflict to WrongExpectedRevisionError with the actual revision', async () => {
    const store = open(new FakeKurrentDb());
    await store.append('control-c', [sampleEvent('control-c', 0, 'r')], 'no_stream');
    const err = await store
      .append('control-c', [sampleEvent('control-c', 1, 'r')], 7)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrongExpectedRevisionError);
    expect((err as WrongExpectedRevisionError).actual).toBe(0);
    expect((err as WrongExpectedRevisionError).expected).toBe(7);
  });

  it('appendMany appends in order and stops at the first failure, keeping earlier batches', async () => {
    const store = open(new FakeKurrentDb());
    await store.append('control-b', [sampleEvent('control-b', 0, 'r')], 'no_stream');
    await expect(
      store.appendMany([
        { stream: 'control-a', events: [sampleEvent('control-a', 0, 'r')], expected: 'no_stream' },
        { stream: 'control-b', events: [sampleEvent('control-b', 1, 'r')], expected: 'no_stream' },
        { stream: 'control-z', events: [sampleEvent('control-z', 0, 'r')], expected: 'no_stream' },
      ]),
    ).rejects.toBeInstanceOf(WrongExpectedRevisionError);
    expect(await store.streamRevision('control-a')).toBe(0);
    expect(await store.streamRevision('control-z')).toBe('no_stream');
  });

  it('keeps checkpoints in checkpoint-<name> as $-typed events, out of readAll and headPosition', async () => {
    const fake = new FakeKurrentDb();
    const store = open(fake);
    await store.append('control-h', [sampleEvent('control-h', 0, 'r')], 'no_stream');
    const head = await store.headPosition();
    await store.saveCheckpoint('executor:e1', head);
    await store.saveCheckpoint('executor:e1', head);
    const cps = fake.streams.get('checkpoint-executor:e1')!;
    expect(cps.map((r) => r.type)).toEqual([CHECKPOINT_EVENT_TYPE, CHECKPOINT_EVENT_TYPE]);
    expect(cps[1]!.data).toMatchObject({ position: head, commit: String(head), prepare: String(head) });
    expect(fake.metadata.get('checkpoint-executor:e1')).toEqual({ maxCount: 16 });
    expect(await store.getCheckpoint('executor:e1')).toBe(head);
    expect(await store.headPosition()).toBe(head);
    expect((await store.readAll()).map((e) => e.type)).toEqual(['AutomationPaused']);
  });

  it('resumes a dropped subscription from the last handled event: nothing skipped, nothing twice', async () => {
    const fake = new FakeKurrentDb();
    const store = open(fake);
    const stream = 'control-d';
    await store.append(
      stream,
      [0, 1, 2].map((n) => sampleEvent(stream, n, 'r')),
      'no_stream',
    );
    const seen: number[] = [];
    let live = 0;
    const sub = store.subscribeAll({ onLive: () => (live += 1) }, (e) => {
      seen.push(e.revision);
      if (e.revision === 1) fake.dropAll(); // dropped while handling: event 1 must not come again
    });
    await waitFor(() => seen.length === 3 && live === 1);
    fake.dropAll();
    await store.append(
      stream,
      [3, 4].map((n) => sampleEvent(stream, n, 'r')),
      2,
    ); // written while down
    await waitFor(() => seen.length === 5);
    fake.dropAll(clientError('not-leader'));
    await store.append(stream, [sampleEvent(stream, 5, 'r')], 4);
    await waitFor(() => seen.length === 6);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect(live).toBe(1);
    expect(fake.subscribeCalls).toBe(4);
    expect(sub.position).toBe(fake.streams.get(stream)![5]!.position);
    expect(fake.violations).toEqual([]);
    await sub.stop();
  });

  it('gives up after maxAttempts consecutive failures with a retriable STORE_UNAVAILABLE', async () => {
    const fake = new FakeKurrentDb();
    const store = open(fake);
    fake.failSubscriptions = clientError('unavailable', 'connection refused');
    let error: unknown;
    const sub = store.subscribeAll({ onError: (e) => (error = e) }, () => undefined);
    await sub.done;
    expect(error).toBeInstanceOf(TourniquetError);
    expect((error as TourniquetError).code).toBe('STORE_UNAVAILABLE');
    expect((error as TourniquetError).retriable).toBe(true);
    expect(fake.subscribeCalls).toBe(4); // the first try and 3 reconnects
  });

  it('stops at once on a permanent error (access denied), without retrying', async () => {
    const fake = new FakeKurrentDb();
    const store = open(fake);
    fake.failSubscriptions = clientError('access-denied', 'only admins may subscribe to $all');
    let error: unknown;
    const sub = store.subscribeAll({ onError: (e) => (error = e) }, () => undefined);
    await sub.done;
    expect((error as Error).message).toMatch(/only admins/);
    expect(fake.subscribeCalls).toBe(1);
  });

  it('resumes from a stored checkpoint in a new process and from a position between records', async () => {
    const fake = new FakeKurrentDb();
    const first = open(fake);
    const stream = 'control-k';
    await first.append(
      stream,
      [0, 1].map((n) => sampleEvent(stream, n, 'r')),
      'no_stream',
    );
    const handled: number[] = [];
    const sub = first.subscribeAll({ types: ['AutomationPaused'] }, async (e) => {
      handled.push(e.revision);
      await first.saveCheckpoint('proj', e.position);
    });
    await waitFor(() => handled.length === 2);
    await sub.stop();
    await first.append(
      stream,
      [2, 3].map((n) => sampleEvent(stream, n, 'r')),
      1,
    );

    const second = open(fake); // knows no positions: the checkpoint is verified with a one-event read
    const after = await second.getCheckpoint('proj');
    expect(after).toBe(fake.streams.get(stream)![1]!.position);
    const resumed: number[] = [];
    const sub2 = second.subscribeAll({ after: after!, types: ['AutomationPaused'] }, (e) => {
      resumed.push(e.revision);
    });
    await waitFor(() => resumed.length === 2);
    await sub2.stop();
    expect(resumed).toEqual([2, 3]);

    const third = open(fake); // a position inside a record (not one the server can start from)
    const between = fake.streams.get(stream)![2]!.position - 1;
    const fromBetween: number[] = [];
    const sub3 = third.subscribeAll({ after: between }, (e) => {
      fromBetween.push(e.revision);
    });
    await waitFor(() => fromBetween.length === 2);
    await sub3.stop();
    expect(fromBetween).toEqual([2, 3]);
    expect((await open(fake).readAll({ after: between })).map((e) => e.revision)).toEqual([2, 3]);
    expect(fake.violations).toEqual([]);
  });
});

describe('KurrentDbEventStore over the fake client: stored as appended', () => {
  it('every detection the boundary accepts reads back unchanged (stream, ids, data) after the wire', async () => {
    const store = new KurrentDbEventStore(new FakeKurrentDb());
    let accepted = 0;
    try {
      await fc.assert(
        fc.asyncProperty(hostileDetection(), async (input) => {
          const r = safeParseDetection(input);
          if (!r.success) return;
          accepted += 1;
          const e = receivedEvent(r.data);
          const before =
            (await store.streamRevision(e.stream)) === 'no_stream' ? [] : await store.readStream(e.stream);
          // the same event id again is an idempotent retry, answered from what is stored
          if (before.some((x) => x.id === e.id)) return;
          await store.append(e.stream, [e], 'any');
          const back = (await store.readStream(e.stream)).filter((s) => s.id === e.id);
          expect(back.length).toBeGreaterThan(0);
          const last = back[back.length - 1]!;
          // the raw record is kept apart (raw-records.ts) and reads back through the store
          expect('raw' in (last.data as { detection: object }).detection).toBe(false);
          const data =
            last.type === 'DetectionReceived'
              ? { detection: await detectionWithRaw(store, last.data) }
              : last.data;
          expect({ stream: last.stream, id: last.id, occurredAt: last.occurredAt, data }).toEqual({
            stream: e.stream,
            id: e.id,
            occurredAt: e.occurredAt,
            data: JSON.parse(JSON.stringify(e.data)),
          });
        }),
        { numRuns: 300 },
      );
      expect(accepted).toBeGreaterThan(30);
    } finally {
      await store.close();
    }
  });

  it('refuses an envelope that would not survive the wire', async () => {
    const fake = new FakeKurrentDb();
    const store = new KurrentDbEventStore(fake);
    const e = receivedEvent({
      id: 'x',
      source: 's',
      identity: { provider: 'okta', id: 'a\udc00' },
      occurredAt: '2026-01-01T00:00:00.000Z',
    });
    await expect(store.append(e.stream, [e], 'any')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(fake.streams.has(e.stream.toWellFormed())).toBe(false);
    await store.close();
  });
});
