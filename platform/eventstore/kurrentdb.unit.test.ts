import { describe, expect, it } from 'vitest';
import { sampleEvent } from '../../test/contract/eventstore.contract.ts';
import { TourniquetError, WrongExpectedRevisionError } from '../errors.ts';
import {
  actualStateToRevision,
  backoffDelay,
  eventUuid,
  fromRecordedEvent,
  isTransientStoreError,
  type KdbRecordedEvent,
  KnownPositions,
  mapClientError,
  numberToPosition,
  positionToNumber,
  revisionToNumber,
  toEventData,
  toStreamState,
  typeFilter,
  uuidV5,
} from './kurrentdb.ts';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof TourniquetError ? err.code : 'not a TourniquetError';
  }
  return undefined;
}

describe('event id → UUID', () => {
  it('is RFC 9562 version 5 (checked against Python uuid.uuid5)', () => {
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe(
      '886313e1-3b8a-5372-9b90-0c9aee199e5d',
    );
    expect(eventUuid('evt-1')).toBe('e1236cd4-30a1-5917-af1a-d5183274cc04');
    expect(eventUuid('détection-ü-1')).toBe('5a9a4079-5bc8-5ae5-816d-b351963e02bc');
  });

  it('is deterministic, well-formed and distinct per id', () => {
    const ids = ['a', 'b', 'det:splunk:123', 'x'.repeat(10_000), '', '00000000-0000-0000-0000-000000000000'];
    const uuids = ids.map(eventUuid);
    for (const u of uuids) expect(u).toMatch(UUID_V5);
    expect(ids.map(eventUuid)).toEqual(uuids);
    expect(new Set(uuids).size).toBe(ids.length);
  });

  it('rejects a malformed namespace', () => {
    expect(() => uuidV5('not-a-uuid', 'x')).toThrow(TypeError);
  });
});

describe('expected revision mapping', () => {
  it('maps the named states and 0-based revisions (bigint)', () => {
    expect(toStreamState('any')).toBe('any');
    expect(toStreamState('no_stream')).toBe('no_stream');
    expect(toStreamState('stream_exists')).toBe('stream_exists');
    expect(toStreamState(0)).toBe(0n);
    expect(toStreamState(41)).toBe(41n);
    expect(toStreamState(MAX)).toBe(BigInt(MAX));
  });

  it('rejects revisions that are not integers >= 0 as a validation error', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX + 1]) {
      expect(code(() => toStreamState(bad))).toBe('VALIDATION_FAILED');
    }
  });

  it('maps revisions and actual states back to numbers', () => {
    expect(revisionToNumber(0n)).toBe(0);
    expect(revisionToNumber(BigInt(MAX))).toBe(MAX);
    expect(code(() => revisionToNumber(BigInt(MAX) + 1n))).toBe('INTERNAL');
    expect(code(() => revisionToNumber(-1n))).toBe('INTERNAL');
    expect(actualStateToRevision('no_stream')).toBe('no_stream');
    expect(actualStateToRevision(-1n)).toBe('no_stream');
    expect(actualStateToRevision(7n)).toBe(7);
    expect(actualStateToRevision(undefined)).toBe('no_stream');
  });
});

describe('position mapping', () => {
  it('uses the commit position as the number, exact up to 2^53 - 1', () => {
    expect(positionToNumber({ commit: 1234n, prepare: 1234n })).toBe(1234);
    expect(positionToNumber({ commit: BigInt(MAX), prepare: BigInt(MAX) })).toBe(MAX);
  });

  it('fails loudly instead of rounding past 2^53', () => {
    expect(code(() => positionToNumber({ commit: 2n ** 53n, prepare: 2n ** 53n }))).toBe('INTERNAL');
    expect(code(() => positionToNumber({ commit: -1n, prepare: -1n }))).toBe('INTERNAL');
  });

  it('maps 0 to the start and n to {commit: n, prepare: n}, round-tripping', () => {
    expect(numberToPosition(0)).toBe('start');
    expect(numberToPosition(98_765)).toEqual({ commit: 98_765n, prepare: 98_765n });
    for (const n of [1, 2 ** 31, 2 ** 40 + 3, MAX]) {
      const p = numberToPosition(n);
      expect(p).not.toBe('start');
      expect(positionToNumber(p as { commit: bigint; prepare: bigint })).toBe(n);
    }
    for (const bad of [-1, 0.5, MAX + 1]) expect(code(() => numberToPosition(bad))).toBe('VALIDATION_FAILED');
  });
});

describe('server-side type filter', () => {
  const matches = (regex: string, type: string) => new RegExp(regex).test(type);

  it('excludes system events ($…) when no types are given', () => {
    const f = typeFilter();
    expect(f).toMatchObject({ filterOn: 'eventType', checkpointInterval: 1 });
    expect(matches(f.regex, 'ActionApproved')).toBe(true);
    for (const t of ['$>', '$metadata', '$tq-checkpoint', '$ProjectionsInitialized'])
      expect(matches(f.regex, t)).toBe(false);
    expect(typeFilter([]).regex).toBe(f.regex);
  });

  it('matches exactly the given types (anchored, not prefixes)', () => {
    const f = typeFilter(['ActionApproved', 'CaseResolved', 'ActionApproved']);
    expect(f.regex).toBe('^(?:ActionApproved|CaseResolved)$');
    expect(matches(f.regex, 'ActionApproved')).toBe(true);
    expect(matches(f.regex, 'CaseResolved')).toBe(true);
    expect(matches(f.regex, 'ActionApprovedLater')).toBe(false);
    expect(matches(f.regex, 'XCaseResolved')).toBe(false);
  });

  it('escapes regex metacharacters in type names', () => {
    const f = typeFilter(['a.b', 'c|d']);
    expect(matches(f.regex, 'a.b')).toBe(true);
    expect(matches(f.regex, 'axb')).toBe(false);
    expect(matches(f.regex, 'c|d')).toBe(true);
    expect(matches(f.regex, 'c')).toBe(false);
  });
});

describe('envelope ↔ KurrentDB event', () => {
  const recorded = (
    e: ReturnType<typeof toEventData>,
    over: Partial<KdbRecordedEvent> = {},
  ): KdbRecordedEvent => ({
    streamId: 'control-x',
    id: e.id,
    revision: 3n,
    type: e.type,
    created: new Date('2026-01-02T03:04:05.678Z'),
    data: JSON.parse(JSON.stringify(e.data)),
    metadata: JSON.parse(JSON.stringify(e.metadata)),
    isJson: true,
    position: { commit: 5000n, prepare: 5000n },
    ...over,
  });

  it('round-trips every envelope field', () => {
    const e = sampleEvent('control-x', 2, 'run');
    const data = toEventData(e);
    expect(data.id).toBe(eventUuid(e.id));
    expect(data.contentType).toBe('application/json');
    expect(data.metadata).toMatchObject({ $correlationId: 'run-corr', $causationId: 'run-control-x-1' });
    const back = fromRecordedEvent(recorded(data));
    expect(back).toEqual({
      ...e,
      recordedAt: '2026-01-02T03:04:05.678Z',
      revision: 3,
      position: 5000,
    });
  });

  it('keeps null causation/correlation ids null (no $-keys then)', () => {
    const e = { ...sampleEvent('control-x', 0, 'run'), correlationId: null };
    const data = toEventData(e);
    expect(data.metadata).not.toHaveProperty('$correlationId');
    expect(data.metadata).not.toHaveProperty('$causationId');
    const back = fromRecordedEvent(recorded(data));
    expect(back.causationId).toBeNull();
    expect(back.correlationId).toBeNull();
  });

  it('takes the position from commitPosition when the record has none', () => {
    const data = toEventData(sampleEvent('s', 0, 'r'));
    expect(fromRecordedEvent(recorded(data, { position: undefined }), 777n).position).toBe(777);
    expect(code(() => fromRecordedEvent(recorded(data, { position: undefined })))).toBe('INTERNAL');
  });

  it('refuses events not written by Tourniquet', () => {
    const data = toEventData(sampleEvent('s', 0, 'r'));
    expect(code(() => fromRecordedEvent(recorded(data, { metadata: undefined })))).toBe('DECODE_FAILED');
    expect(code(() => fromRecordedEvent(recorded(data, { isJson: false })))).toBe('DECODE_FAILED');
  });
});

describe('client errors', () => {
  it('maps WrongExpectedVersionError to a retriable WrongExpectedRevisionError', () => {
    const err = mapClientError(
      { type: 'wrong-expected-version', streamName: 's', expectedState: 'no_stream', actualState: 4n },
      { stream: 's', expected: 'no_stream' },
    );
    expect(err).toBeInstanceOf(WrongExpectedRevisionError);
    const w = err as WrongExpectedRevisionError;
    expect([w.code, w.retriable, w.stream, w.expected, w.actual]).toEqual([
      'WRONG_EXPECTED_REVISION',
      true,
      's',
      'no_stream',
      4,
    ]);
    const none = mapClientError(
      { type: 'wrong-expected-version', actualState: 'no_stream' },
      { stream: 't', expected: 3 },
    );
    expect((none as WrongExpectedRevisionError).actual).toBe('no_stream');
  });

  it('maps unreachable-server errors to a retriable STORE_UNAVAILABLE', () => {
    for (const type of ['unavailable', 'deadline-exceeded', 'not-leader', 'unknown']) {
      const err = mapClientError(Object.assign(new Error('down'), { type }));
      expect(err).toBeInstanceOf(TourniquetError);
      expect((err as TourniquetError).code).toBe('STORE_UNAVAILABLE');
      expect((err as TourniquetError).retriable).toBe(true);
    }
  });

  it('passes other errors through and classifies what a subscription retries', () => {
    const denied = Object.assign(new Error('no'), { type: 'access-denied' });
    expect(mapClientError(denied)).toBe(denied);
    expect(isTransientStoreError(denied)).toBe(false);
    expect(isTransientStoreError(Object.assign(new Error(), { type: 'unavailable' }))).toBe(true);
    expect(isTransientStoreError(new Error('socket hang up'))).toBe(true);
    expect(isTransientStoreError(new TourniquetError('DECODE_FAILED', 'x'))).toBe(false);
    expect(isTransientStoreError(new TourniquetError('STORE_UNAVAILABLE', 'x', { retriable: true }))).toBe(
      true,
    );
  });
});

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((a) => backoffDelay(a, 100, 2000))).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000,
    ]);
  });
});

describe('KnownPositions', () => {
  it('answers membership and the greatest known position at or below n', () => {
    const k = new KnownPositions();
    for (const n of [500, 100, 300, 300, 0, -5]) k.add(n);
    expect(k.size).toBe(3);
    expect(k.has(300)).toBe(true);
    expect(k.has(301)).toBe(false);
    expect(k.floor(299)).toBe(100);
    expect(k.floor(300)).toBe(300);
    expect(k.floor(99)).toBeUndefined();
    expect(k.floor(10_000)).toBe(500);
  });

  it('is bounded and keeps the newest positions', () => {
    const k = new KnownPositions(3);
    for (const n of [10, 20, 30, 40, 50]) k.add(n);
    expect(k.size).toBe(3);
    expect(k.has(20)).toBe(false);
    expect(k.floor(45)).toBe(40);
    expect(k.floor(25)).toBeUndefined();
  });
});
