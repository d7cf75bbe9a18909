import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../platform/errors.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { detectionEvent } from '../test/contract/eventstore.contract.ts';
import {
  type HistoryLine,
  historyFromLines,
  mergeOrder,
  parseHistoryLine,
  readHistory,
  splitLines,
  storeHistoryLines,
  toHistoryLine,
} from './history.ts';

const dir = mkdtempSync(join(tmpdir(), 'tq-history-'));
let n = 0;
function file(lines: string[]): string {
  const path = join(dir, `h${++n}.ndjson`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const identity = { provider: 'okta', id: 'alice@acme.example', type: 'human' };
const detection = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'detection',
    id,
    source: 'okta',
    kind: 'impossible_travel',
    confidence: 0.9,
    severity: 'high',
    identity,
    occurredAt: '2026-10-01T10:00:00.000Z',
    ...extra,
  });
const catalogue = JSON.stringify({
  type: 'identity',
  entry: { provider: 'okta', id: 'alice@acme.example', type: 'human' },
});
const verdict = JSON.stringify({
  type: 'verdict',
  identity,
  verdict: 'malicious',
  at: '2026-10-01T12:00:00Z',
});

async function failure(lines: string[]): Promise<TourniquetError> {
  try {
    await readHistory(file(lines));
  } catch (err) {
    expect(err).toBeInstanceOf(TourniquetError);
    return err as TourniquetError;
  }
  throw new Error('expected the history to be rejected');
}

describe('history reader', () => {
  it('reads every line type, defaulting a detection’s `at` to its occurredAt', async () => {
    const h = await readHistory(
      file([
        catalogue,
        detection('d1'),
        detection('d2', { at: '2026-10-01T10:01:00Z' }),
        JSON.stringify({
          type: 'approval',
          identity,
          decision: 'approve',
          by: { id: 'ana', role: 'analyst' },
          at: '2026-10-01T10:30:00Z',
        }),
        JSON.stringify({
          type: 'approval',
          actionRef: 'act-0123456789abcdef-1-1',
          decision: 'reject',
          by: 'ben',
          at: '2026-10-01T10:31:00Z',
          reason: 'travel',
        }),
        '',
        verdict,
      ]),
    );
    expect(h.records.map((r) => r.type)).toEqual([
      'identity',
      'detection',
      'detection',
      'approval',
      'approval',
      'verdict',
    ]);
    expect(h.lines).toBe(7);
    expect(h.invalid).toBe(0);
    const [id, d1, d2, a1, a2] = h.records;
    expect(id!.atMs).toBe(Number.NEGATIVE_INFINITY);
    expect(d1).toMatchObject({ type: 'detection', at: '2026-10-01T10:00:00.000Z' });
    expect(d1?.type === 'detection' && 'type' in d1.detection).toBe(false);
    expect(d2).toMatchObject({ at: '2026-10-01T10:01:00Z', atMs: Date.parse('2026-10-01T10:01:00Z') });
    expect(a1).toMatchObject({
      by: { id: 'ana', role: 'analyst' },
      identity: { provider: 'okta', id: 'alice@acme.example' },
    });
    expect(a2).toMatchObject({ by: { id: 'ben' }, actionRef: 'act-0123456789abcdef-1-1', reason: 'travel' });
  });

  it('names the line of an unknown type', async () => {
    const err = await failure([catalogue, detection('d1'), '{"type":"alert","id":"x"}']);
    expect(err.code).toBe('HISTORY_INVALID');
    expect(err.message).toBe(
      'line 3: unknown type "alert" (expected one of detection, identity, approval, verdict)',
    );
    expect(err.details).toEqual({ line: 3 });
  });

  it('names the line of broken JSON', async () => {
    const err = await failure([catalogue, '{"type":"detection", "id": ', detection('d1')]);
    expect(err.message).toMatch(/^line 2: not valid JSON \(/);
  });

  it('names the line of a detection without identity', async () => {
    const noIdentity = JSON.parse(detection('d9')) as Record<string, unknown>;
    delete noIdentity.identity;
    const err = await failure([catalogue, verdict, detection('d1'), '', JSON.stringify(noIdentity)]);
    expect(err.message).toBe('line 5: detection without identity');
  });

  it('names the field of an otherwise invalid line', async () => {
    const err = await failure([detection('d1', { confidence: 1.5 })]);
    expect(err.message).toMatch(/^line 1: invalid detection: confidence: /);
    const missingType = await failure([catalogue, '{"id":"x"}']);
    expect(missingType.message).toMatch(/^line 2: missing "type"/);
    const approval = await failure([
      JSON.stringify({ type: 'approval', decision: 'approve', by: 'ana', at: '2026-10-01T10:30:00Z' }),
    ]);
    expect(approval.message).toMatch(
      /^line 1: invalid approval: actionRef: an approval needs an actionRef or an identity/,
    );
  });

  it('skipInvalid continues past bad lines and counts them', async () => {
    const seen: number[] = [];
    const noIdentity = JSON.parse(detection('d9')) as Record<string, unknown>;
    delete noIdentity.identity;
    const h = await readHistory(
      file([
        catalogue,
        '{"type":"alert"}',
        detection('d1'),
        'not json',
        JSON.stringify(noIdentity),
        detection('d2'),
        verdict,
      ]),
      { skipInvalid: true, onInvalid: (i) => seen.push(i.line) },
    );
    expect(h.invalid).toBe(3);
    expect(seen).toEqual([2, 4, 5]);
    expect(h.issues.map((i) => i.line)).toEqual([2, 4, 5]);
    expect(h.records.map((r) => r.type)).toEqual(['identity', 'detection', 'detection', 'verdict']);
  });

  it('fails clearly on a missing file', async () => {
    await expect(readHistory(join(dir, 'nope.ndjson'))).rejects.toThrow(/history file not found/);
  });

  it('streams lines across chunk boundaries and CRLF', async () => {
    const chunks = ['{"a":1}\r\n{"b"', ':2}\n', '\n{"c":3}'];
    const out: string[] = [];
    for await (const l of splitLines(Readable.from(chunks))) out.push(l);
    expect(out).toEqual(['{"a":1}', '{"b":2}', '', '{"c":3}']);
  });

  it('orders records by time, ties by input order, and leaves ordered input alone', () => {
    const mk = (id: string, at: string): HistoryLine => JSON.parse(detection(id, { at })) as HistoryLine;
    const h = historyFromLines([
      mk('a', '2026-10-01T10:05:00Z'),
      mk('b', '2026-10-01T10:00:00Z'),
      mk('c', '2026-10-01T10:05:00Z'),
      mk('d', '2026-10-01T10:00:00Z'),
    ]);
    const order = mergeOrder(h.records)!;
    const ids = Array.from(order, (i) => {
      const r = h.records[i]!;
      return r.type === 'detection' ? r.detection.id : '';
    });
    expect(ids).toEqual(['b', 'd', 'a', 'c']);
    expect(
      mergeOrder(
        historyFromLines([mk('a', '2026-10-01T10:00:00Z'), mk('b', '2026-10-01T10:00:00Z')]).records,
      ),
    ).toBeNull();
  });

  it('round-trips records through the line format', () => {
    const lines = [catalogue, detection('d1', { at: '2026-10-01T10:01:00.000Z' }), verdict].map((l) =>
      parseHistoryLine(l, 1),
    );
    for (const r of lines) expect(parseHistoryLine(JSON.stringify(toHistoryLine(r)), 1)).toEqual(r);
  });
});

describe('history from an event store', () => {
  it('gives detections back with their raw records, kept apart by the store or inline in older events', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    try {
      const raw = { vendor: 'okta', uuid: 'evt-1', outcome: { result: 'SUCCESS' } };
      await store.append('identity-okta:h', [detectionEvent('identity-okta:h', 0, 'h', raw)], 'no_stream');
      const [recorded] = await store.readStream('identity-okta:h');
      expect(recorded?.type === 'DetectionReceived' && recorded.data.rawRecord).toBeTruthy();
      const lines = [];
      for await (const l of storeHistoryLines(store)) lines.push(l);
      expect(lines).toEqual([expect.objectContaining({ type: 'detection', id: 'h-d0', raw })]);
    } finally {
      await store.close();
    }
  });
});
