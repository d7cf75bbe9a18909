/**
 * Link formats side by side: a database written before format 2 (rows hashed over the escaped JSON
 * array, raw records inline, no `link` column) keeps verifying when this version opens it and appends
 * format-2 rows after them; its detections read as they always did.
 */
import { hash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detectionEvent } from '../../test/contract/eventstore.contract.ts';
import { type ChainContent, chainHash, GENESIS } from './chain-hash.ts';
import { verifyChainDb } from './chain-verify.ts';
import { detectionWithRaw, rawRecordRefOf } from './raw-records.ts';
import { SqliteEventStore } from './sqlite.ts';

/** The events table as versions before link formats wrote it, with format-1 rows carrying raw inline. */
function legacyDatabase(path: string, n: number): void {
  const db = new Database(path);
  db.exec(`
    CREATE TABLE events (
      position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
      revision INTEGER NOT NULL, type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
      causation_id TEXT, correlation_id TEXT, schema_version INTEGER NOT NULL, data TEXT NOT NULL,
      hash TEXT NOT NULL, UNIQUE (stream, revision));
    CREATE TABLE streams (stream TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;`);
  let prev = GENESIS;
  const insert = db.prepare(
    'INSERT INTO events (position, id, stream, revision, type, occurred_at, recorded_at, causation_id, correlation_id, schema_version, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  for (let i = 0; i < n; i++) {
    const e = detectionEvent('identity-okta:old', i, 'legacy', { vendor: 'okta', n: i, text: 'line\nfeed' });
    const row: ChainContent = {
      position: i + 1,
      id: e.id,
      stream: e.stream,
      revision: i,
      type: e.type,
      occurred_at: e.occurredAt,
      recorded_at: e.occurredAt,
      causation_id: null,
      correlation_id: null,
      schema_version: 1,
      data: JSON.stringify(e.data),
    };
    prev = chainHash(prev, row);
    insert.run(...Object.values(row), prev);
  }
  db.prepare('INSERT INTO streams (stream, revision) VALUES (?, ?)').run('identity-okta:old', n - 1);
  db.close();
}

describe('chain link formats', () => {
  it('a format-1 database keeps verifying, takes format-2 rows after its own, and reads its inline raw records', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tq-formats-')), 'events.db');
    legacyDatabase(path, 5);
    const store = new SqliteEventStore({ path });
    try {
      const stream = 'identity-okta:new';
      await store.append(stream, [detectionEvent(stream, 0, 'new', { vendor: 'okta', n: 0 })], 'no_stream');
      const links = store.database
        .prepare<[], { link: number }>('SELECT link FROM events ORDER BY position')
        .all()
        .map((r) => r.link);
      expect(links).toEqual([1, 1, 1, 1, 1, 2]);
      expect(verifyChainDb(store.database)).toMatchObject({ ok: true, checked: 6, problemCount: 0 });
      const [old] = await store.readStream('identity-okta:old');
      if (old?.type !== 'DetectionReceived') throw new Error('expected the old detection');
      expect(old.data.rawRecord).toBeUndefined();
      expect(await detectionWithRaw(store, old.data)).toMatchObject({ raw: { vendor: 'okta', n: 0 } });

      // an old row edited is still caught, and so is a new row moved to the old format
      store.database.prepare('UPDATE events SET link = 1 WHERE position = 6').run();
      store.database
        .prepare('UPDATE events SET data = replace(data, \'"n":3\', \'"n":4\') WHERE position = 4')
        .run();
      const verdict = verifyChainDb(store.database);
      expect(verdict.problems.map((p) => [p.position, p.problem])).toEqual([
        [4, 'altered'],
        [6, 'altered'],
      ]);
    } finally {
      await store.close();
    }
  });

  it('format 2 hashes the stored data bytes themselves, after a header that cannot hold a line feed', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.json(), (id, stream, data) => {
        const row: ChainContent = {
          position: 7,
          id,
          stream,
          revision: 3,
          type: 'CaseOpened',
          occurred_at: '2026-01-01T00:00:00.000Z',
          recorded_at: '2026-01-01T00:00:01.000Z',
          causation_id: null,
          correlation_id: 'c',
          schema_version: 1,
          data,
          link: 2,
        };
        const header = JSON.stringify([
          2,
          7,
          id,
          stream,
          3,
          'CaseOpened',
          row.occurred_at,
          row.recorded_at,
          null,
          'c',
          1,
        ]);
        expect(header).not.toContain('\n');
        expect(chainHash(GENESIS, row)).toBe(hash('sha256', `${GENESIS}\n${header}\n${data}`));
        // moving text between a header field and the data changes the link
        expect(chainHash(GENESIS, { ...row, id: `${id}x`, data: data.slice(1) })).not.toBe(
          chainHash(GENESIS, row),
        );
      }),
    );
  });

  it('finds the raw record reference only as the top-level last member, never a nested look-alike', () => {
    const ref = { sha256: 'a'.repeat(64), bytes: 12 };
    const top = JSON.stringify({ detection: { id: 'x' }, rawRecord: ref });
    expect(rawRecordRefOf('DetectionReceived', top)).toEqual(ref);
    expect(rawRecordRefOf('CaseOpened', top)).toBeUndefined();
    const nested = JSON.stringify({ detection: { id: 'x', evidence: { rawRecord: ref } } });
    expect(rawRecordRefOf('DetectionReceived', nested)).toBeUndefined();
    const inline = JSON.stringify({ detection: { id: 'x', raw: { rawRecord: ref } } });
    expect(rawRecordRefOf('DetectionReceived', inline)).toBeUndefined();
  });
});
