import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { type ChainContent, chainHash, GENESIS } from './chain-hash.ts';
import type { ChainAnchor, ChainBreak, ChainVerdict } from './port.ts';
import { rawRecordProblem, rawRecordRefOf } from './raw-records.ts';

/**
 * Verification of the SQLite store's hash chain. Every row carries its link `hash` over the previous
 * hash and its own content, in the format its `link` column names (chain-hash.ts), starting from 64
 * zeros; a DetectionReceived whose raw record is kept apart names it by digest in its chained data,
 * and the record's text must still have that digest (raw-records.ts).
 * The walk recomputes every link and reports EVERY link that does not hold (a first problem never
 * hides a later one):
 *  - `missing`: a position is absent (a row was deleted), including at the tail (the position
 *    sequence is ahead of the last row);
 *  - `reordered`: the row's stored hash is a valid link, but for another position (rows moved or swapped);
 *  - `altered`: the row's content no longer matches its stored hash (or the row before it was
 *    rewritten together with its own hash), or the raw record it names no longer has its digest;
 *  - `missing` also: the raw record a row names is gone;
 * and, against anchors (heads recorded earlier outside the database):
 *  - `truncated`: an anchored position is past the last row (the tail was cut, even with the
 *    position sequence put back);
 *  - `rewritten`: the row at an anchored position no longer has the anchored hash (the chain was
 *    rewritten at or before it and re-hashed to look consistent).
 */

export type { ChainAnchor, ChainBreak, ChainVerdict };
/** Problems listed in a verdict; beyond it they are counted only. */
export const MAX_REPORTED = 1000;
/** Bad links searched for another place in the chain (each search rehashes the chain once). */
const MAX_PLACE_SEARCHES = 100;

/** A row of the events table: the chained content and its hash. */
export interface EventRow extends ChainContent {
  hash: string;
}

export interface VerifyOptions {
  anchors?: readonly ChainAnchor[];
}

/** Walks rows in position order; `finish` classifies what it collected. */
class ChainWalker {
  private prev: { position: number; hash: string } = { position: 0, hash: GENESIS };
  private checked = 0;
  private intactHead: ChainVerdict['head'] = null;
  private intact = true;
  private readonly gaps: Array<{ first: number; last: number; before: EventRow }> = [];
  /** Rows whose link to the stored predecessor fails. */
  private readonly badLinks: EventRow[] = [];
  private badLinkCount = 0;
  private readonly anchorPositions: Set<number>;
  private readonly hashAt = new Map<number, string>();

  private readonly anchors: readonly ChainAnchor[];
  /** The text of a raw record by digest (undefined: not in the store). */
  private readonly rawBody: (sha256: string) => string | undefined;
  /** Raw records already found intact in this walk (many events may name one). */
  private readonly rawIntact = new Set<string>();
  private readonly rawProblems: ChainBreak[] = [];
  private rawProblemCount = 0;

  constructor(anchors: readonly ChainAnchor[], rawBody: (sha256: string) => string | undefined) {
    this.anchors = anchors;
    this.anchorPositions = new Set(anchors.map((a) => a.position));
    this.rawBody = rawBody;
  }

  get lastPosition(): number {
    return this.prev.position;
  }

  feed(row: EventRow): void {
    this.checked += 1;
    if (this.anchorPositions.has(row.position)) this.hashAt.set(row.position, row.hash);
    if (row.position !== this.prev.position + 1) {
      // The link of the row after a gap cannot be checked: its predecessor is gone.
      this.gaps.push({ first: this.prev.position + 1, last: row.position - 1, before: row });
      this.intact = false;
    } else {
      const { hash, ...content } = row;
      if (chainHash(this.prev.hash, content) !== hash) {
        this.badLinkCount += 1;
        if (this.badLinks.length < MAX_REPORTED * 2) this.badLinks.push(row);
        this.intact = false;
      }
    }
    if (!this.rawRecordIntact(row)) this.intact = false;
    this.prev = { position: row.position, hash: row.hash };
    if (this.intact) this.intactHead = { position: row.position, hash: row.hash };
  }

  /** The raw record a row names (if any) still has the digest the chained row holds. */
  private rawRecordIntact(row: EventRow): boolean {
    const ref = rawRecordRefOf(row.type, row.data);
    if (!ref || this.rawIntact.has(ref.sha256)) return true;
    const problem = rawRecordProblem(ref, this.rawBody(ref.sha256));
    if (!problem) {
      this.rawIntact.add(ref.sha256);
      return true;
    }
    this.rawProblemCount += 1;
    if (this.rawProblems.length < MAX_REPORTED)
      this.rawProblems.push({
        position: row.position,
        id: row.id,
        problem,
        detail:
          problem === 'missing'
            ? `event ${row.id} (${row.type}, stream ${row.stream} revision ${row.revision}) names raw record ${ref.sha256}, which is gone`
            : `event ${row.id} (${row.type}, stream ${row.stream} revision ${row.revision}) names raw record ${ref.sha256}, whose text no longer has that digest (${ref.bytes} bytes recorded)`,
        stream: row.stream,
        revision: row.revision,
      });
    return false;
  }

  finish(db: Database.Database): ChainVerdict {
    const problems: ChainBreak[] = [];
    let extra = 0;
    for (const g of this.gaps)
      problems.push(
        missingPositions(
          db,
          g.first,
          g.last,
          `deleted before event ${g.before.id} (position ${g.before.position})`,
        ),
      );
    const linkProblems = classifyBadLinks(db, this.badLinks);
    problems.push(...linkProblems.problems);
    extra += this.badLinkCount - this.badLinks.length;
    problems.push(...this.rawProblems);
    extra += this.rawProblemCount - this.rawProblems.length;
    // One statement, one snapshot: rows appended by another writer meanwhile are not mistaken for a gap.
    const tail = db
      .prepare<[], { seq: number | null; max: number | null }>(
        "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events') AS seq, (SELECT MAX(position) FROM events) AS max",
      )
      .get();
    const last = tail?.max ?? 0;
    const seq = tail?.seq ?? 0;
    if (seq > last && last <= this.prev.position) {
      problems.push(missingPositions(db, last + 1, seq, `the last ${seq - last} event(s) were deleted`));
    }
    let matched = 0;
    for (const a of this.anchors) {
      const problem = anchorProblem(a, this.hashAt.get(a.position), last);
      if (problem) problems.push(problem);
      else matched += 1;
    }
    problems.sort((x, y) => x.position - y.position);
    const reported = problems.slice(0, MAX_REPORTED);
    const ok = problems.length === 0;
    return {
      ok,
      checked: this.checked,
      head: this.intactHead,
      ...(reported[0] ? { firstBad: reported[0] } : {}),
      problems: reported,
      problemCount: problems.length + extra,
      anchors: { checked: this.anchors.length, matched },
    };
  }
}

/** Verifies the whole chain in one synchronous walk (the CLI, the API, `projections rebuild`). */
export function verifyChainDb(db: Database.Database, opts: VerifyOptions = {}): ChainVerdict {
  const walker = new ChainWalker(opts.anchors ?? [], rawBodies(db));
  for (const row of db.prepare<[], EventRow>('SELECT * FROM events ORDER BY position').iterate())
    walker.feed(row);
  return walker.finish(db);
}

/**
 * The same walk in pages, giving the event loop back between pages: a running server sweeps its
 * store with it without stalling requests.
 */
export async function verifyChainPaged(
  db: Database.Database,
  opts: VerifyOptions & { pageSize?: number; isOpen?: () => boolean } = {},
): Promise<ChainVerdict | undefined> {
  const walker = new ChainWalker(opts.anchors ?? [], rawBodies(db));
  const page = db.prepare<[number, number], EventRow>(
    'SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?',
  );
  const size = opts.pageSize ?? 2000;
  for (;;) {
    if (opts.isOpen && !opts.isOpen()) return undefined;
    const rows = page.all(walker.lastPosition, size);
    for (const r of rows) walker.feed(r);
    if (rows.length < size) break;
    await yieldToLoop();
  }
  if (opts.isOpen && !opts.isOpen()) return undefined;
  return walker.finish(db);
}

/** Raw record texts by digest (a database from before raw records were kept apart has none). */
function rawBodies(db: Database.Database): (sha256: string) => string | undefined {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'raw_records'")
    .get();
  if (!exists) return () => undefined;
  const stmt = db.prepare<[string], { body: string }>('SELECT body FROM raw_records WHERE sha256 = ?');
  return (sha256) => stmt.get(sha256)?.body;
}

function anchorProblem(a: ChainAnchor, found: string | undefined, last: number): ChainBreak | undefined {
  const from = `${a.source ? ` from ${a.source}` : ''}${a.at ? ` recorded ${a.at}` : ''}`;
  if (a.position > last) {
    return {
      position: last + 1,
      id: null,
      problem: 'truncated',
      detail: `the anchor${from} says position ${a.position} existed with hash ${a.hash}, but the last row is at ${last}: events ${last + 1}..${a.position} were cut from the tail`,
    };
  }
  if (found === undefined) return undefined; // the row is gone: reported as missing already
  if (found !== a.hash) {
    return {
      position: a.position,
      id: null,
      problem: 'rewritten',
      detail: `the row at anchored position ${a.position} has hash ${found}, the anchor${from} says ${a.hash}: the chain was rewritten at or before position ${a.position}`,
    };
  }
  return undefined;
}

/**
 * A bad link is a reordered row when its stored hash fits another place; once the moved rows'
 * original places are known, a row whose real predecessor was moved away is fine after all.
 */
function classifyBadLinks(db: Database.Database, rows: readonly EventRow[]): { problems: ChainBreak[] } {
  if (rows.length === 0) return { problems: [] };
  const byPosition = new Map<number, string>();
  let max = 0;
  for (const r of db
    .prepare<[], { position: number; hash: string }>('SELECT position, hash FROM events')
    .iterate()) {
    byPosition.set(r.position, r.hash);
    if (r.position > max) max = r.position;
  }
  const originalHashAt = new Map<number, string>();
  const placed = new Map<number, number>();
  rows.forEach((row, i) => {
    if (i >= MAX_PLACE_SEARCHES) return;
    const q = findOriginalPlace(row, byPosition, max);
    if (q !== undefined) {
      placed.set(row.position, q);
      originalHashAt.set(q, row.hash);
    }
  });
  const problems: ChainBreak[] = [];
  for (const row of rows) {
    const q = placed.get(row.position);
    if (q !== undefined) {
      problems.push(
        badRow(row, 'reordered', `sits at position ${row.position} but was recorded at position ${q}`),
      );
      continue;
    }
    const realPrev = originalHashAt.get(row.position - 1);
    const { hash, ...content } = row;
    if (realPrev !== undefined && chainHash(realPrev, content) === hash) continue; // its predecessor moved
    problems.push(
      badRow(
        row,
        'altered',
        `at position ${row.position} does not match its recorded hash (or the event before it was rewritten with a new hash)`,
      ),
    );
  }
  return { problems };
}

/** Positions `first`..`last` are gone (`how` says how), with the stream revision the first one held when known. */
function missingPositions(db: Database.Database, first: number, last: number, how: string): ChainBreak {
  const lost = missingRevision(db, first);
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

function badRow(row: EventRow, problem: 'reordered' | 'altered', where: string): ChainBreak {
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
  db: Database.Database,
  position: number,
): { stream: string; revision: number } | undefined {
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
  return db
    .prepare<[], { stream: string; revision: number }>(
      `SELECT s.stream AS stream, COALESCE((SELECT MAX(revision) FROM events e WHERE e.stream = s.stream), -1) + 1 AS revision
       FROM streams s WHERE s.revision > COALESCE((SELECT MAX(revision) FROM events e WHERE e.stream = s.stream), -1)
       LIMIT 1`,
    )
    .get();
}

/**
 * Whether a row's stored hash is a valid link for another place in the chain: the position q it
 * was recorded at, after the row that preceded it then. Rows keep their stored hash when moved, so
 * that predecessor is the row now at q-1, or (when two neighbours were swapped) the row now at q.
 */
function findOriginalPlace(row: EventRow, byPosition: Map<number, string>, max: number): number | undefined {
  const { hash, ...content } = row;
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
