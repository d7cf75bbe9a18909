/**
 * Group commit is invisible to callers: appends issued together are written in one transaction, yet
 * each one's outcome (its results, or its own error) and the resulting store are exactly those of
 * the same appends made one after the other.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../schemas/events.ts';
import { eventStoreContract } from '../../test/contract/eventstore.contract.ts';
import { DuplicateConflictError, TourniquetError, WrongExpectedRevisionError } from '../errors.ts';
import { GroupCommitQueue, type StreamBatch } from './group-commit.ts';
import type { ExpectedRevision } from './port.ts';
import { SqliteEventStore } from './sqlite.ts';

eventStoreContract('sqlite (file, group commit)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tq-group-'));
  return new SqliteEventStore({ path: join(dir, 'events.db'), groupCommit: true });
});

/** A DetectionReceived whose `source` + `id` is `key` (the store's dedupe index claims it). */
function received(id: string, stream: string, key: string): NewEvent {
  return {
    id,
    type: 'DetectionReceived',
    stream,
    occurredAt: '2026-11-01T00:00:00.000Z',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: {
      detection: {
        id: key,
        source: 'group-test',
        kind: 'anomalous_token_use',
        confidence: 0.5,
        severity: 'low',
        identity: { provider: 'okta', id: stream, type: 'human' },
        occurredAt: '2026-11-01T00:00:00.000Z',
        evidence: {},
      },
    },
  } as NewEvent;
}

const fileStore = (groupCommit: boolean) =>
  new SqliteEventStore({
    path: join(mkdtempSync(join(tmpdir(), 'tq-group-')), 'events.db'),
    groupCommit,
  });

/** What a caller can observe of an outcome: its results, or its error's type. */
const outcomeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'fulfilled'
    ? { ok: r.value }
    : {
        error:
          r.reason instanceof WrongExpectedRevisionError
            ? 'wrong-revision'
            : r.reason instanceof DuplicateConflictError
              ? 'duplicate-conflict'
              : r.reason instanceof TourniquetError
                ? r.reason.code
                : String(r.reason),
      };

const rowsOf = async (store: SqliteEventStore) =>
  (await store.readAll()).map((e) => [e.position, e.id, e.stream, e.revision]);

describe('group commit on the SQLite store', () => {
  it('writes appends issued together in one transaction, each applied whole or not at all', async () => {
    const store = fileStore(true);
    await store.append('s-held', [received('held-1', 's-held', 'k-held')], 'no_stream');
    const appends = [
      store.appendMany([{ stream: 'a', events: [received('a-1', 'a', 'k-a1')], expected: 'no_stream' }]),
      // fails on its second batch (wrong revision): its first batch must not be written either
      store.appendMany([
        { stream: 'b', events: [received('b-1', 'b', 'k-b1')], expected: 'no_stream' },
        { stream: 's-held', events: [received('b-2', 's-held', 'k-b2')], expected: 7 },
      ]),
      // claims a key another stream holds: a duplicate conflict, alone
      store.appendMany([
        {
          stream: 'c',
          events: [received('c-1', 'c', 'k-c1'), received('c-2', 'c', 'k-held')],
          expected: 'any',
        },
      ]),
      store.append('d', [received('d-1', 'd', 'k-d1'), received('d-2', 'd', 'k-d2')], 'no_stream'),
      store.append('a', [received('a-2', 'a', 'k-a2')], 0), // builds on the first append of the group
    ];
    const settled = await Promise.allSettled(appends);
    expect(settled.map((r) => outcomeOf(r))).toEqual([
      { ok: [{ nextRevision: 0, position: 2 }] },
      { error: 'wrong-revision' },
      { error: 'duplicate-conflict' },
      { ok: { nextRevision: 1, position: 4 } },
      { ok: { nextRevision: 1, position: 5 } },
    ]);
    expect((await store.readAll()).map((e) => e.id)).toEqual(['held-1', 'a-1', 'd-1', 'd-2', 'a-2']);
    expect(await store.streamRevision('b')).toBe('no_stream');
    expect((await store.verifyChain()).ok).toBe(true);
    await store.close();
  });

  it('gives every append of a group a storage fault when the transaction itself fails', async () => {
    const queue = new GroupCommitQueue(() => {
      throw new TourniquetError('STORE_UNAVAILABLE', 'disk full', { status: 503, retriable: true });
    });
    const batch: StreamBatch[] = [{ stream: 's', events: [], expected: 'any' }];
    const settled = await Promise.allSettled([queue.enqueue(batch), queue.enqueue(batch)]);
    expect(settled.map((r) => outcomeOf(r))).toEqual([
      { error: 'STORE_UNAVAILABLE' },
      { error: 'STORE_UNAVAILABLE' },
    ]);
  });

  it('gathers the appends queued in one turn of the event loop into one group, at most maxGroup each', async () => {
    const groups: number[] = [];
    const queue = new GroupCommitQueue(
      (appends) => {
        groups.push(appends.length);
        return appends.map(() => ({ results: [] }));
      },
      { maxGroup: 4 },
    );
    await Promise.all(Array.from({ length: 10 }, () => queue.enqueue([])));
    expect(groups).toEqual([4, 4, 2]);
    expect(queue.stats).toEqual({ groups: 3, appends: 10 });
  });

  it('a store that closes with appends queued writes them first', async () => {
    const store = fileStore(true);
    const pending = store.append('s', [received('s-1', 's', 'k-s1')], 'no_stream');
    await store.close();
    await expect(pending).resolves.toEqual({ nextRevision: 0, position: 1 });
  });

  it('property: concurrent appends end as the same appends made one after the other would', async () => {
    const streams = ['s0', 's1', 's2'];
    const anAppend = fc.array(
      fc.record({
        stream: fc.constantFrom(...streams),
        expected: fc.constantFrom<ExpectedRevision>('any', 'no_stream', 'stream_exists', 0, 1, 2),
        keys: fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(anAppend, { minLength: 1, maxLength: 12 }), async (plan) => {
        const requests = plan.map((batches, r) =>
          batches.map((b, i) => ({
            stream: b.stream,
            expected: b.expected,
            events: b.keys.map((k, j) => received(`r${r}-${i}-${j}`, b.stream, `k${k}`)),
          })),
        );
        const grouped = fileStore(true);
        const together = await Promise.allSettled(requests.map((batches) => grouped.appendMany(batches)));
        const sequential = fileStore(false);
        const oneByOne: PromiseSettledResult<unknown>[] = [];
        for (const batches of requests) {
          oneByOne.push(
            await sequential.appendMany(batches).then(
              (value) => ({ status: 'fulfilled' as const, value }),
              (reason: unknown) => ({ status: 'rejected' as const, reason }),
            ),
          );
        }
        expect(together.map((r) => outcomeOf(r))).toEqual(oneByOne.map((r) => outcomeOf(r)));
        expect(await rowsOf(grouped)).toEqual(await rowsOf(sequential));
        expect((await grouped.verifyChain()).ok).toBe(true);
        // everything acknowledged is there after a reopen
        const path = grouped.path;
        await grouped.close();
        await sequential.close();
        const reopened = new SqliteEventStore({ path });
        const ids = new Set((await reopened.readAll()).map((e) => e.id));
        for (const [r, outcome] of together.entries()) {
          const wanted = requests[r]!.flatMap((b) => b.events.map((e) => e.id));
          if (outcome.status === 'fulfilled') for (const id of wanted) expect(ids.has(id)).toBe(true);
          else for (const id of wanted) expect(ids.has(id)).toBe(false);
        }
        await reopened.close();
      }),
      { numRuns: 40 },
    );
  });
});
