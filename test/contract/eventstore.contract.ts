import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WrongExpectedRevisionError } from '../../platform/errors.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { detectionWithRaw, readRawRecordText } from '../../platform/eventstore/raw-records.ts';
import type { NewEvent, RecordedEvent } from '../../schemas/events.ts';

/** A minimal valid event for the contract: the store must not care about payload shape. */
export function sampleEvent(stream: string, n: number, runId: string): NewEvent {
  return {
    id: `${runId}-${stream}-${n}`,
    type: 'AutomationPaused',
    stream,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    causationId: n > 0 ? `${runId}-${stream}-${n - 1}` : null,
    correlationId: `${runId}-corr`,
    schemaVersion: 1,
    data: { by: { kind: 'system', id: 'contract' }, reason: `event ${n}` },
  };
}

function waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error('timed out waiting'));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** A DetectionReceived carrying a raw vendor record, for the raw-record cases of the contract. */
export function detectionEvent(stream: string, n: number, runId: string, raw: unknown): NewEvent {
  return {
    id: `${runId}-${stream}-det-${n}`,
    type: 'DetectionReceived',
    stream,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: {
      detection: {
        id: `${runId}-d${n}`,
        source: 'contract',
        kind: 'anomalous_token_use',
        confidence: 0.9,
        severity: 'high',
        identity: { provider: 'okta', id: `${runId}-u`, type: 'human' },
        occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
        evidence: { ip: '203.0.113.7' },
        raw,
      },
    },
  };
}

/** What an adapter's test gives the contract to alter a stored raw record as an attacker would. */
export interface RawRecordTamper {
  /** Replaces the stored text of the raw record with this digest. */
  alter(store: EventStore, sha256: string, body: string): Promise<void>;
}

/**
 * The EventStore contract. Every adapter runs exactly this suite; `factory` returns a fresh, empty
 * store (or a store whose prior content is isolated by the unique stream names used here).
 */
export function eventStoreContract(
  adapter: string,
  factory: () => Promise<EventStore>,
  tamper?: RawRecordTamper,
): void {
  describe(`EventStore contract: ${adapter}`, () => {
    let store: EventStore;
    let run: string;
    let s: (name: string) => string;

    beforeEach(async () => {
      store = await factory();
      run = Math.random().toString(36).slice(2, 10);
      s = (name) => `${name}-${run}`;
    });
    afterEach(async () => {
      await store.close();
    });

    it('appends and reads a stream back in revision order with envelope fields intact', async () => {
      const stream = s('a');
      const events = [0, 1, 2].map((n) => sampleEvent(stream, n, run));
      const result = await store.append(stream, events, 'no_stream');
      expect(result.nextRevision).toBe(2);
      const read = await store.readStream(stream);
      expect(read.map((e) => e.revision)).toEqual([0, 1, 2]);
      expect(read.map((e) => e.id)).toEqual(events.map((e) => e.id));
      const first = read[0]!;
      expect(first.type).toBe('AutomationPaused');
      expect(first.occurredAt).toBe(events[0]!.occurredAt);
      expect(first.correlationId).toBe(`${run}-corr`);
      expect(first.causationId).toBeNull();
      expect(read[1]!.causationId).toBe(events[0]!.id);
      expect(first.schemaVersion).toBe(1);
      expect(first.data).toEqual(events[0]!.data);
      expect(typeof first.recordedAt).toBe('string');
      expect(Number.isNaN(Date.parse(first.recordedAt))).toBe(false);
      expect(await store.streamRevision(stream)).toBe(2);
      expect(await store.streamRevision(s('missing'))).toBe('no_stream');
    });

    it('reads a stream from a revision', async () => {
      const stream = s('from');
      await store.append(
        stream,
        [0, 1, 2, 3].map((n) => sampleEvent(stream, n, run)),
        'any',
      );
      const read = await store.readStream(stream, { fromRevision: 2 });
      expect(read.map((e) => e.revision)).toEqual([2, 3]);
    });

    it('enforces expected revisions with a typed, retriable conflict', async () => {
      const stream = s('occ');
      await store.append(stream, [sampleEvent(stream, 0, run)], 'no_stream');
      const err = await store
        .append(stream, [sampleEvent(stream, 1, run)], 'no_stream')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WrongExpectedRevisionError);
      expect((err as WrongExpectedRevisionError).retriable).toBe(true);
      expect((err as WrongExpectedRevisionError).code).toBe('WRONG_EXPECTED_REVISION');
      await expect(store.append(stream, [sampleEvent(stream, 1, run)], 5)).rejects.toBeInstanceOf(
        WrongExpectedRevisionError,
      );
      await expect(
        store.append(s('nope'), [sampleEvent(s('nope'), 0, run)], 'stream_exists'),
      ).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      const ok = await store.append(stream, [sampleEvent(stream, 1, run)], 0);
      expect(ok.nextRevision).toBe(1);
      const ok2 = await store.append(stream, [sampleEvent(stream, 2, run)], 'stream_exists');
      expect(ok2.nextRevision).toBe(2);
      expect((await store.readStream(stream)).length).toBe(3);
    });

    it('lets exactly one of two racing writers win at the same expected revision', async () => {
      const stream = s('race');
      const results = await Promise.allSettled([
        store.append(stream, [{ ...sampleEvent(stream, 0, run), id: `${run}-w1` }], 'no_stream'),
        store.append(stream, [{ ...sampleEvent(stream, 0, run), id: `${run}-w2` }], 'no_stream'),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
      expect((await store.readStream(stream)).length).toBe(1);
    });

    it('treats a retried append of the same events as idempotent', async () => {
      const stream = s('idem');
      const events = [0, 1].map((n) => sampleEvent(stream, n, run));
      const a = await store.append(stream, events, 'no_stream');
      const b = await store.append(stream, events, 'no_stream');
      expect(b.nextRevision).toBe(a.nextRevision);
      expect((await store.readStream(stream)).length).toBe(2);
    });

    it('reads all events in global order, paged from a position, filtered by type', async () => {
      const a = s('ga');
      const b = s('gb');
      await store.append(a, [sampleEvent(a, 0, run)], 'any');
      await store.append(b, [sampleEvent(b, 0, run)], 'any');
      await store.append(a, [sampleEvent(a, 1, run)], 'any');
      await store.append(b, [{ ...sampleEvent(b, 1, run), type: 'AutomationResumed' } as NewEvent], 'any');
      const all = (await store.readAll({ after: 0 })).filter((e) => e.id.startsWith(run));
      expect(all.map((e) => e.id)).toEqual([
        `${run}-${a}-0`,
        `${run}-${b}-0`,
        `${run}-${a}-1`,
        `${run}-${b}-1`,
      ]);
      for (let i = 1; i < all.length; i++) expect(all[i]!.position).toBeGreaterThan(all[i - 1]!.position);
      const afterSecond = (await store.readAll({ after: all[1]!.position })).filter((e) =>
        e.id.startsWith(run),
      );
      expect(afterSecond.map((e) => e.id)).toEqual([`${run}-${a}-1`, `${run}-${b}-1`]);
      const page = await store.readAll({ after: all[0]!.position, limit: 2 });
      expect(page).toHaveLength(2);
      expect(page[0]!.id).toBe(`${run}-${b}-0`);
      const resumed = (await store.readAll({ types: ['AutomationResumed'] })).filter((e) =>
        e.id.startsWith(run),
      );
      expect(resumed.map((e) => e.id)).toEqual([`${run}-${b}-1`]);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(all[3]!.position);
    });

    it('appends to several streams at once', async () => {
      const a = s('ma');
      const b = s('mb');
      const results = await store.appendMany([
        { stream: a, events: [sampleEvent(a, 0, run)], expected: 'no_stream' },
        { stream: b, events: [sampleEvent(b, 0, run), sampleEvent(b, 1, run)], expected: 'no_stream' },
      ]);
      expect(results.map((r) => r.nextRevision)).toEqual([0, 1]);
      expect((await store.readStream(b)).length).toBe(2);
    });

    it('catches up from a position, then switches to live, in order and without gaps', async () => {
      const stream = s('sub');
      await store.append(
        stream,
        [0, 1, 2].map((n) => sampleEvent(stream, n, run)),
        'no_stream',
      );
      const start = (await store.readAll()).find((e) => e.id === `${run}-${stream}-0`)!.position - 1;
      const seen: RecordedEvent[] = [];
      let live = false;
      const sub = store.subscribeAll({ after: start, onLive: () => (live = true) }, (e) => {
        if (e.id.startsWith(run)) seen.push(e);
      });
      await waitFor(() => live && seen.length === 3);
      await store.append(
        stream,
        [3, 4].map((n) => sampleEvent(stream, n, run)),
        2,
      );
      await waitFor(() => seen.length === 5);
      expect(seen.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
      expect(sub.position).toBe(seen[4]!.position);
      await sub.stop();
      await store.append(stream, [sampleEvent(stream, 5, run)], 4);
      await new Promise((r) => setTimeout(r, 150));
      expect(seen).toHaveLength(5);
    });

    it('stops a subscription whose handler fails and reports the error, never skipping the event', async () => {
      const stream = s('fail');
      await store.append(
        stream,
        [0, 1].map((n) => sampleEvent(stream, n, run)),
        'no_stream',
      );
      const first = (await store.readAll()).find((e) => e.id === `${run}-${stream}-0`)!;
      let error: unknown;
      const handled: string[] = [];
      const sub = store.subscribeAll({ after: first.position - 1, onError: (e) => (error = e) }, (e) => {
        if (e.id === `${run}-${stream}-1`) throw new Error('handler broke');
        handled.push(e.id);
      });
      await sub.done;
      expect((error as Error).message).toBe('handler broke');
      expect(sub.position).toBe(first.position);
      expect(handled).toEqual([first.id]);
    });

    it('keeps the raw record of a detection apart: stored once by digest, named in the event, read back whole', async () => {
      const stream = s('raw');
      const raw = { vendor: 'okta', eventType: 'user.session.start', nested: { list: [1, 'two', null] } };
      await store.append(
        stream,
        [detectionEvent(stream, 0, run, raw), detectionEvent(stream, 1, run, raw)],
        'no_stream',
      );
      const read = await store.readStream(stream);
      const text = JSON.stringify(raw);
      const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
      for (const e of read) {
        expect(e.type).toBe('DetectionReceived');
        if (e.type !== 'DetectionReceived') continue;
        expect('raw' in e.data.detection).toBe(false);
        expect(e.data.rawRecord).toEqual({ sha256, bytes: Buffer.byteLength(text) });
        expect(await detectionWithRaw(store, e.data)).toEqual({ ...e.data.detection, raw });
      }
      expect(await store.readRawRecord?.(sha256)).toBe(text);
      expect(await store.readRawRecord?.('0'.repeat(64))).toBeUndefined();
      await expect(readRawRecordText(store, '0'.repeat(64))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // a detection without raw names no record
      const bare = detectionEvent(stream, 2, run, undefined);
      delete (bare.data as { detection: { raw?: unknown } }).detection.raw;
      await store.append(stream, [bare], 1);
      const last = (await store.readStream(stream, { fromRevision: 2 }))[0]!;
      expect(last.type === 'DetectionReceived' && last.data.rawRecord).toBeUndefined();
    });

    it.skipIf(!tamper)('refuses to hand out a raw record altered after it was recorded', async () => {
      const stream = s('raw-tamper');
      const raw = { vendor: 'guardduty', finding: `f-${run}` };
      await store.append(stream, [detectionEvent(stream, 0, run, raw)], 'no_stream');
      const sha256 = createHash('sha256').update(JSON.stringify(raw), 'utf8').digest('hex');
      await tamper!.alter(store, sha256, JSON.stringify({ ...raw, finding: 'benign' }));
      await expect(store.readRawRecord!(sha256)).rejects.toMatchObject({ code: 'CHAIN_BROKEN' });
      const [e] = await store.readStream(stream);
      if (e?.type !== 'DetectionReceived') throw new Error('expected the detection back');
      await expect(detectionWithRaw(store, e.data)).rejects.toMatchObject({ code: 'CHAIN_BROKEN' });
    });

    it('stores and reads checkpoints', async () => {
      const name = s('cp');
      expect(await store.getCheckpoint(name)).toBeUndefined();
      await store.saveCheckpoint(name, 42);
      expect(await store.getCheckpoint(name)).toBe(42);
      await store.saveCheckpoint(name, 43);
      expect(await store.getCheckpoint(name)).toBe(43);
    });
  });
}
