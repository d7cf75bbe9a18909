import { hash as oneShotHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { ChainVerdict } from './port.ts';

/**
 * Tamper evidence for the embedded event store. Every row carries
 * `hash = sha256(previous hash, "\n", JSON of [position, id, stream, revision, type, occurred_at,
 * recorded_at, causation_id, correlation_id, schema_version, data])`, starting from 64 zeros.
 * `verifyChain` walks the rows in position order, recomputes every link and reports the first one
 * that does not hold:
 *  - `missing`: a position is absent (a row was deleted), including at the tail (the store's
 *    position sequence is ahead of the last row);
 *  - `reordered`: the row's stored hash is a valid link, but for another position or another
 *    predecessor (rows were moved or swapped);
 *  - `altered`: the row's content no longer matches its stored hash (or a predecessor was
 *    rewritten together with its hash).
 * A chain rewritten from the first altered row to the head is self-consistent: anchor the head
 * hash this returns somewhere else (ticket, WORM storage) and compare it later to catch that too.
 */

/** A row of the events table, with its chain hash. */
export interface EventRow {
  position: number;
  id: string;
  stream: string;
  revision: number;
  type: string;
  occurred_at: string;
  recorded_at: string;
  causation_id: string | null;
  correlation_id: string | null;
  schema_version: number;
  data: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

/** The hash chain link over one recorded event: altered, missing or reordered rows break it. */
export function chainHash(prev: string, e: Omit<EventRow, 'hash'>): string {
  // one-shot hash of one string: the same bytes as hashing prev, "\n" and the JSON in three updates,
  // without a Hash object per event
  return oneShotHash(
    'sha256',
    `${prev}\n${JSON.stringify([
      e.position,
      e.id,
      e.stream,
      e.revision,
      e.type,
      e.occurred_at,
      e.recorded_at,
      e.causation_id,
      e.correlation_id,
      e.schema_version,
      e.data,
    ])}`,
  );
}

/** What the walk reads: the store's database and its rows in position order (a SqliteEventStore). */
export interface ChainSource {
  readonly database: Database.Database;
  iterateRows(): IterableIterator<EventRow>;
}

type Row = EventRow;

type ChainBreak = NonNullable<ChainVerdict['firstBad']>;

export function verifySqliteChain(store: ChainSource): ChainVerdict {
  const db = store.database;
  let prevHash = GENESIS;
  let prevPosition = 0;
  let checked = 0;
  let head: ChainVerdict['head'] = null;
  for (const row of store.iterateRows()) {
    checked += 1;
    if (row.position !== prevPosition + 1) {
      const firstBad = missingPositions(
        store,
        prevPosition + 1,
        row.position - 1,
        `deleted before event ${row.id} (position ${row.position})`,
      );
      return { ok: false, checked, head, firstBad };
    }
    const { hash, ...content } = row;
    if (chainHash(prevHash, content) !== hash) {
      const elsewhere = findOriginalPlace(store, row);
      const firstBad =
        elsewhere !== undefined
          ? badRow(
              row,
              'reordered',
              `sits at position ${row.position} but was recorded at position ${elsewhere}`,
            )
          : badRow(row, 'altered', `at position ${row.position} does not match its recorded hash`);
      return { ok: false, checked, head, firstBad };
    }
    prevHash = hash;
    prevPosition = row.position;
    head = { position: row.position, hash };
  }
  // Rows deleted at the tail leave no gap between rows, but the position sequence remembers them.
  const seq =
    db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'").get()?.seq ?? 0;
  if (seq > prevPosition) {
    const firstBad = missingPositions(
      store,
      prevPosition + 1,
      seq,
      `the last ${seq - prevPosition} event(s) were deleted`,
    );
    return { ok: false, checked, head, firstBad };
  }
  return { ok: true, checked, head };
}

/** Positions `first`..`last` are gone (`how` says how), with the stream revision the first one held when known. */
function missingPositions(store: ChainSource, first: number, last: number, how: string): ChainBreak {
  const lost = missingRevision(store, first);
  return {
    position: first,
    id: null,
    problem: 'missing',
    detail:
      `position ${first}${last > first ? `..${last}` : ''} is missing: ${how}` +
      (lost ? `; stream ${lost.stream} lacks revision ${lost.revision}` : ''),
    ...(lost ? { stream: lost.stream, revision: lost.revision } : {}),
  };
}

/** A row present at its position whose link does not hold; `where` ends the detail after naming the event. */
function badRow(row: Row, problem: 'reordered' | 'altered', where: string): ChainBreak {
  return {
    position: row.position,
    id: row.id,
    problem,
    detail: `event ${row.id} (${row.type}, stream ${row.stream} revision ${row.revision}) ${where}`,
    stream: row.stream,
    revision: row.revision,
  };
}

/**
 * The stream and revision a deleted row held, when the per-stream revisions show a hole: the
 * stream whose neighbouring revisions surround the missing position.
 */
function missingRevision(
  store: ChainSource,
  position: number,
): { stream: string; revision: number } | undefined {
  const db = store.database;
  // A revision r whose predecessor r-1 is gone, nearest to the missing position.
  const hole = db
    .prepare<[number], { stream: string; revision: number }>(
      `SELECT e.stream AS stream, e.revision - 1 AS revision FROM events e
       WHERE e.revision > 0 AND e.position > ?
         AND NOT EXISTS (SELECT 1 FROM events p WHERE p.stream = e.stream AND p.revision = e.revision - 1)
       ORDER BY e.position LIMIT 1`,
    )
    .get(position);
  if (hole) return hole;
  // Otherwise the stream's last revision(s) are gone: the streams table is ahead of its events.
  const tail = db
    .prepare<[], { stream: string; revision: number }>(
      `SELECT s.stream AS stream, COALESCE((SELECT MAX(revision) FROM events e WHERE e.stream = s.stream), -1) + 1 AS revision
       FROM streams s WHERE s.revision > COALESCE((SELECT MAX(revision) FROM events e WHERE e.stream = s.stream), -1)
       LIMIT 1`,
    )
    .get();
  return tail;
}

/**
 * Whether a row's stored hash is a valid link for another place in the chain: the position q it
 * was recorded at, after the row that preceded it then. Rows keep their stored hash when moved, so
 * that predecessor is the row now at q-1, or (when two neighbours were swapped) the row now at q.
 * Returns q, or undefined when no place fits (the row's content itself was altered).
 */
function findOriginalPlace(store: ChainSource, row: Row): number | undefined {
  const { hash, ...content } = row;
  const byPosition = new Map<number, string>();
  let max = 0;
  for (const r of store.database
    .prepare<[], { position: number; hash: string }>('SELECT position, hash FROM events')
    .iterate()) {
    byPosition.set(r.position, r.hash);
    if (r.position > max) max = r.position;
  }
  for (let q = 1; q <= max + 1; q++) {
    if (q === row.position) continue;
    const candidate = { ...content, position: q };
    const predecessors = new Set<string>();
    predecessors.add(q === 1 ? GENESIS : (byPosition.get(q - 1) ?? GENESIS));
    const atQ = byPosition.get(q);
    if (atQ !== undefined && atQ !== hash) predecessors.add(atQ);
    for (const prev of predecessors) {
      if (chainHash(prev, candidate) === hash) return q;
    }
  }
  return undefined;
}
