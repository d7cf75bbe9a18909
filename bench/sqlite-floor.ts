/**
 * The plain better-sqlite3 floor under the decider stage: the rows a run of the decider wrote (its
 * events, raw records, stream revisions and detection keys), written again by bare prepared inserts
 * into a fresh file with the same tables, pragmas and durability, in transactions of the same sizes.
 * No JSON, no hashing, no deciding: what the disk and SQLite cost for those rows, nothing else.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ChainContent } from '../platform/eventstore/chain-hash.ts';
import type { Durability, SqliteEventStore } from '../platform/eventstore/sqlite.ts';

/** Counts the events of every transaction the store commits (one per append or appendMany). */
export function recordTransactions(store: SqliteEventStore): number[] {
  const sizes: number[] = [];
  const append = store.append.bind(store);
  const appendMany = store.appendMany.bind(store);
  store.append = async (stream, events, expected) => {
    const r = await append(stream, events, expected);
    if (events.length > 0) sizes.push(events.length);
    return r;
  };
  store.appendMany = async (batches) => {
    const r = await appendMany(batches);
    const n = batches.reduce((sum, b) => sum + b.events.length, 0);
    if (n > 0) sizes.push(n);
    return r;
  };
  return sizes;
}

/** An events row (the chained fields, as the store writes them) with what the floor copies beside it. */
interface Row extends ChainContent {
  hash: string;
  link: number;
  source: string | null;
  detection_id: string | null;
  raw_sha256: string | null;
  raw_body: string | null;
}

/**
 * Writes the rows of `source` after position `after` again, in transactions of `sizes` events; returns
 * the seconds it took and the events, detections and bytes written.
 */
export function sqliteFloor(
  source: SqliteEventStore,
  after: number,
  sizes: readonly number[],
  dir: string,
  durability: Durability,
): {
  seconds: number;
  events: number;
  detections: number;
  dataBytesPerEvent: number;
  rawBytesPerDetection: number;
} {
  // a store from before link formats and raw records (to measure the same floor under it) has neither
  const has = (sql: string) => source.database.prepare(sql).get() !== undefined;
  const rawApart = has("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'raw_records'");
  const linked = has("SELECT 1 FROM pragma_table_info('events') WHERE name = 'link'");
  const rows = source.database
    .prepare<[number], Row>(
      `SELECT e.*, ${linked ? '' : '1 AS link,'} json_extract(e.data, '$.detection.source') AS source,
              json_extract(e.data, '$.detection.id') AS detection_id,
              ${rawApart ? 'r.sha256 AS raw_sha256, r.body AS raw_body' : 'NULL AS raw_sha256, NULL AS raw_body'}
       FROM events e
       ${rawApart ? "LEFT JOIN raw_records r ON r.sha256 = json_extract(e.data, '$.rawRecord.sha256')" : ''}
       WHERE e.position > ? ORDER BY e.position`,
    )
    .all(after);
  const db = new Database(join(dir, `floor-${Date.now()}.db`));
  db.pragma('page_size = 8192');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec(`
    CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
      revision INTEGER NOT NULL, type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
      causation_id TEXT, correlation_id TEXT, schema_version INTEGER NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL,
      link INTEGER NOT NULL DEFAULT 1, UNIQUE (stream, revision));
    CREATE INDEX events_type ON events (type, position);
    CREATE TABLE streams (stream TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE raw_records (sha256 TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE detection_keys (source TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL,
      PRIMARY KEY (source, id)) WITHOUT ROWID;`);
  const insert = db.prepare(
    'INSERT INTO events (position, id, stream, revision, type, occurred_at, recorded_at, causation_id, correlation_id, schema_version, data, hash, link) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertRaw = db.prepare('INSERT INTO raw_records (sha256, body) VALUES (?, ?) ON CONFLICT DO NOTHING');
  const upsertStream = db.prepare(
    'INSERT INTO streams (stream, revision) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET revision = excluded.revision',
  );
  const claim = db.prepare(
    'INSERT INTO detection_keys (source, id, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  );
  const write = db.transaction((batch: readonly Row[]) => {
    for (const r of batch) {
      if (r.raw_sha256 !== null) insertRaw.run(r.raw_sha256, r.raw_body);
      insert.run(
        r.position,
        r.id,
        r.stream,
        r.revision,
        r.type,
        r.occurred_at,
        r.recorded_at,
        r.causation_id,
        r.correlation_id,
        r.schema_version,
        r.data,
        r.hash,
        r.link,
      );
      if (r.type === 'DetectionReceived' && r.source !== null)
        claim.run(r.source, r.detection_id, r.position);
      upsertStream.run(r.stream, r.revision);
    }
  });
  const batches: Row[][] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= rows.length) break;
    batches.push(rows.slice(at, at + n));
    at += n;
  }
  if (at < rows.length) batches.push(rows.slice(at));
  const start = process.hrtime.bigint();
  for (const b of batches) write.immediate(b);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const dataBytes = rows.reduce((sum, r) => sum + Buffer.byteLength(r.data), 0);
  const bytes = rows.reduce(
    (sum, r) => sum + Buffer.byteLength(r.data) + (r.raw_body ? Buffer.byteLength(r.raw_body) : 0),
    0,
  );
  db.close();
  const detections = rows.filter((r) => r.type === 'DetectionReceived').length;
  return {
    seconds,
    events: rows.length,
    detections,
    dataBytesPerEvent: dataBytes / Math.max(1, rows.length),
    rawBytesPerDetection: (bytes - dataBytes) / Math.max(1, detections),
  };
}
