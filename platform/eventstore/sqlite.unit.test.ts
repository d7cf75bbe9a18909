import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  eventStoreContract,
  type RawRecordTamper,
  sampleEvent,
} from '../../test/contract/eventstore.contract.ts';
import { SqliteEventStore } from './sqlite.ts';
import { chainHash, verifySqliteChain as verifyChain } from './sqlite-chain.ts';

const sqliteTamper: RawRecordTamper = {
  async alter(store, sha256, body) {
    (store as SqliteEventStore).database
      .prepare('UPDATE raw_records SET body = ? WHERE sha256 = ?')
      .run(body, sha256);
  },
};
eventStoreContract(
  'sqlite (file, durable)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-store-'));
    return new SqliteEventStore({ path: join(dir, 'events.db') });
  },
  sqliteTamper,
);
eventStoreContract('sqlite (memory)', async () => new SqliteEventStore({ path: ':memory:' }), sqliteTamper);

describe('SqliteEventStore specifics', () => {
  it('chain hash: sha256 over prev, a newline and the JSON row (the format verifyChain checks)', () => {
    const text = fc.string({ unit: 'grapheme' });
    fc.assert(
      fc.property(
        fc.record({
          position: fc.nat(),
          id: text,
          stream: text,
          revision: fc.nat(),
          type: text,
          occurred_at: text,
          recorded_at: text,
          causation_id: fc.option(text),
          correlation_id: fc.option(text),
          schema_version: fc.nat(),
          data: fc.json(),
        }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        (row, prev) => {
          const expected = createHash('sha256')
            .update(prev)
            .update('\n')
            .update(
              JSON.stringify([
                row.position,
                row.id,
                row.stream,
                row.revision,
                row.type,
                row.occurred_at,
                row.recorded_at,
                row.causation_id,
                row.correlation_id,
                row.schema_version,
                row.data,
              ]),
            )
            .digest('hex');
          expect(chainHash(prev, row)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is durable by default: WAL with synchronous=FULL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-store-'));
    const store = new SqliteEventStore({ path: join(dir, 'e.db') });
    expect(store.database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.database.pragma('page_size', { simple: true })).toBe(8192);
    expect(store.database.pragma('synchronous', { simple: true })).toBe(2); // FULL
    const fast = new SqliteEventStore({ path: join(dir, 'f.db'), durability: 'normal' });
    expect(fast.database.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
  });

  it('sees appends made by another connection to the same file (other process) through polling', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-store-'));
    const path = join(dir, 'shared.db');
    const reader = new SqliteEventStore({ path, pollMs: 20 });
    const writer = new SqliteEventStore({ path });
    const seen: string[] = [];
    const sub = reader.subscribeAll({}, (e) => {
      seen.push(e.id);
    });
    await writer.append('x', [sampleEvent('x', 0, 'p')], 'no_stream');
    const start = Date.now();
    while (seen.length === 0 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['p-x-0']);
    await sub.stop();
    await reader.close();
    await writer.close();
  });

  it('rolls back a multi-stream append entirely when one stream conflicts', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    await store.append('b', [sampleEvent('b', 0, 'r')], 'no_stream');
    await expect(
      store.appendMany([
        { stream: 'a', events: [sampleEvent('a', 0, 'r')], expected: 'no_stream' },
        { stream: 'b', events: [sampleEvent('b', 1, 'r')], expected: 'no_stream' },
      ]),
    ).rejects.toThrow(/expected revision/);
    expect(await store.streamRevision('a')).toBe('no_stream');
    expect(await store.headPosition()).toBe(1);
  });

  it('keeps one unbroken hash chain over multi-stream appends, also after one rolled back', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const batch = (n: number, from: number, tag = 'c') =>
      Array.from({ length: n }, (_, i) => ({
        stream: `s${from + i}`,
        events: [sampleEvent(`s${from + i}`, 0, tag), sampleEvent(`s${from + i}`, 1, tag)],
        expected: 'no_stream' as const,
      }));
    await store.appendMany(batch(50, 0));
    // the last stream conflicts: the whole transaction rolls back, the chain head it moved must not stick
    await expect(store.appendMany([...batch(10, 50), ...batch(1, 0, 'other')])).rejects.toThrow(
      /expected revision/,
    );
    await store.appendMany(batch(10, 50));
    await store.append('single', [sampleEvent('single', 0, 'c')], 'no_stream');
    expect(await store.headPosition()).toBe(100 + 1 + 20);
    const verdict = verifyChain(store);
    expect(verdict.ok).toBe(true);
    expect(verdict.checked).toBe(121);
  });
});
