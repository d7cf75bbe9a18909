import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { eventStoreContract, sampleEvent } from '../../test/contract/eventstore.contract.ts';
import { WrongExpectedRevisionError } from '../errors.ts';
import { CoalescingEventStore } from './coalescing.ts';
import { SqliteEventStore } from './sqlite.ts';

eventStoreContract(
  'coalescing over sqlite (file, durable)',
  async () =>
    new CoalescingEventStore(
      new SqliteEventStore({ path: join(mkdtempSync(join(tmpdir(), 'tq-coalesce-')), 'events.db') }),
    ),
);
eventStoreContract(
  'coalescing over sqlite (memory, groups of 2)',
  async () => new CoalescingEventStore(new SqliteEventStore({ path: ':memory:' }), { maxBatch: 2 }),
);

describe('CoalescingEventStore', () => {
  const open: CoalescingEventStore[] = [];
  const make = (maxBatch?: number) => {
    const inner = new SqliteEventStore({ path: ':memory:' });
    const store = new CoalescingEventStore(inner, maxBatch ? { maxBatch } : {});
    open.push(store);
    return {
      inner,
      store,
      appendMany: vi.spyOn(inner, 'appendMany'),
      append: vi.spyOn(inner, 'append'),
    };
  };
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });

  it('writes the appends issued in one turn of the event loop as one appendMany', async () => {
    const { store, appendMany, append } = make();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.append(`s-${i}`, [sampleEvent(`s-${i}`, 0, 'co')], 'no_stream'),
      ),
    );
    expect(appendMany).toHaveBeenCalledTimes(1);
    expect(appendMany.mock.calls[0]![0]).toHaveLength(50);
    expect(append).not.toHaveBeenCalled();
    // each caller gets its own result, in the order of the group (one transaction: consecutive positions)
    expect(results.map((r) => r.nextRevision)).toEqual(Array(50).fill(0));
    const positions = results.map((r) => r.position);
    for (let i = 1; i < positions.length; i++) expect(positions[i]).toBe(positions[i - 1]! + 1);
    expect(store.stats).toEqual({ groups: 1, coalesced: 50, fallbacks: 0 });
    expect(await store.headPosition()).toBe(50);
  });

  it('fails a conflicting append alone: the rest of its group is written', async () => {
    const { store, appendMany, append } = make();
    await store.append('taken', [sampleEvent('taken', 0, 'pre')], 'no_stream');
    appendMany.mockClear();
    append.mockClear();

    const settled = await Promise.allSettled([
      store.append('a', [sampleEvent('a', 0, 'co')], 'no_stream'),
      store.append('taken', [sampleEvent('taken', 1, 'co')], 'no_stream'), // the stream exists: conflict
      store.append('b', [sampleEvent('b', 0, 'co')], 'no_stream'),
      store.append('taken', [sampleEvent('taken', 1, 'ok')], 0), // the right revision: succeeds
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const err = (settled[1] as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(WrongExpectedRevisionError);
    expect((err as WrongExpectedRevisionError).stream).toBe('taken');

    // the group was tried once as a whole, rolled back, then each append alone
    expect(appendMany).toHaveBeenCalledTimes(1);
    expect(append).toHaveBeenCalledTimes(4);
    expect(store.stats.fallbacks).toBe(1);
    expect((await store.readStream('a')).map((e) => e.id)).toEqual(['co-a-0']);
    expect((await store.readStream('b')).map((e) => e.id)).toEqual(['co-b-0']);
    expect((await store.readStream('taken')).map((e) => e.id)).toEqual(['pre-taken-0', 'ok-taken-1']);
    // nothing of the rolled-back group is left behind: 1 + 3 events
    expect((await store.readAll()).length).toBe(4);
  });

  it('lets exactly one of several writers racing on one stream win, inside one group', async () => {
    const { store } = make();
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        store.append('race', [{ ...sampleEvent('race', 0, 'co'), id: `w${i}` }], 'no_stream'),
      ),
    );
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(settled[0]!.status).toBe('fulfilled'); // queue order: the first writer wins
    for (const s of settled.slice(1))
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedRevisionError);
    expect((await store.readStream('race')).map((e) => e.id)).toEqual(['w0']);
  });

  it('flushes a full group at once (maxBatch) and the rest on the next turn', async () => {
    const { store, appendMany } = make(4);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.append(`m-${i}`, [sampleEvent(`m-${i}`, 0, 'co')], 'any')),
    );
    expect(appendMany.mock.calls.map((c) => c[0].length)).toEqual([4, 4, 2]);
    expect(await store.headPosition()).toBe(10);
  });

  it('does not wrap a lone append in appendMany', async () => {
    const { store, appendMany, append } = make();
    await store.append('lone', [sampleEvent('lone', 0, 'co')], 'no_stream');
    expect(appendMany).not.toHaveBeenCalled();
    expect(append).toHaveBeenCalledTimes(1);
  });

  it('close() lets queued appends finish before closing the inner store', async () => {
    const inner = new SqliteEventStore({ path: join(mkdtempSync(join(tmpdir(), 'tq-coalesce-')), 'e.db') });
    const store = new CoalescingEventStore(inner);
    const pending = [0, 1, 2].map((i) =>
      store.append(`c-${i}`, [sampleEvent(`c-${i}`, 0, 'co')], 'no_stream'),
    );
    await store.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(3);
    const reopened = new SqliteEventStore({ path: inner.path });
    expect(await reopened.headPosition()).toBe(3);
    await reopened.close();
  });
});
