import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import { chainHash, GENESIS } from './chain-hash.ts';
import {
  type ChainAnchor,
  type ChainBreak,
  type EventRow,
  MAX_REPORTED,
  verifyChainPaged,
} from './chain-verify.ts';

/**
 * The running store's own tamper check (the SQLite store creates one when its `integrity` option is
 * set). It keeps the head this process last knew — in memory and in a small head file beside the
 * database, so a restart can compare it with what it finds — and:
 *  - inside every append transaction, before chaining new rows, checks that the row at the known head
 *    still has its hash and a valid link, walks any rows other writers appended since, and checks that
 *    the position sequence is not ahead of the last row (cheap: a few indexed reads and one hash);
 *  - on open, does the same against the head file;
 *  - sweeps the whole chain in pages at an interval (altered, deleted or swapped rows behind the head).
 * The first mismatch makes the store refuse every append (CHAIN_BROKEN, 503, not retriable) until it
 * is reopened by an operator, and logs one error line naming the problems.
 */

export interface ChainGuardOptions {
  /** Head file (JSON {position, hash, at}); false: none (an in-memory store). */
  headFile: string | false;
  /** Full sweep interval in ms (0: only the sweep at open). */
  sweepIntervalMs?: number;
  log?: Logger;
  /** Called once when the chain is found broken. */
  onBroken?: (problems: readonly ChainBreak[]) => void;
  now?: () => Date;
}

export interface ChainHead {
  position: number;
  hash: string;
}

export interface ChainStatus {
  ok: boolean;
  /** The last head that verified. */
  head: ChainHead | null;
  code?: 'CHAIN_BROKEN';
  since?: string;
  problems?: ChainBreak[];
  /** When the last full sweep finished and what it checked. */
  lastSweep?: { at: string; checked: number };
}

const DEFAULT_SWEEP_INTERVAL_MS = 15 * 60_000;

function chainBrokenError(status: ChainStatus): TourniquetError {
  const first = status.problems?.[0];
  return new TourniquetError(
    'CHAIN_BROKEN',
    `the event store's hash chain no longer matches what this server recorded${first ? ` (${first.problem} at position ${first.position}: ${first.detail})` : ''}; writes are refused until an operator investigates (tourniquet audit verify)`,
    {
      status: 503,
      retriable: false,
      details: { problems: (status.problems ?? []).slice(0, 20), since: status.since },
    },
  );
}

export class ChainGuard {
  private known: ChainHead | null = null;
  private broken: { since: string; problems: ChainBreak[] } | null = null;
  private lastSweep: ChainStatus['lastSweep'];
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private closed = false;
  private readonly now: () => Date;
  private db: Database.Database | undefined;
  private stmts: ReturnType<typeof statements> | undefined;
  private anchor: ChainAnchor | undefined;
  private headFd: number | undefined;
  private headFdFresh = true;

  private readonly opts: ChainGuardOptions;

  constructor(opts: ChainGuardOptions) {
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
  }

  status(): ChainStatus {
    return {
      ok: this.broken === null,
      head: this.known,
      ...(this.broken ? { code: 'CHAIN_BROKEN' as const, ...this.broken } : {}),
      ...(this.lastSweep ? { lastSweep: this.lastSweep } : {}),
    };
  }

  /** The head file's last content, when there is one. */
  readHeadFile(): ChainHead | undefined {
    if (!this.opts.headFile || !existsSync(this.opts.headFile)) return undefined;
    const text = readFileSync(this.opts.headFile, 'utf8').trim();
    if (text === '') return undefined;
    const parsed = JSON.parse(text) as Partial<ChainHead>;
    if (typeof parsed.position !== 'number' || typeof parsed.hash !== 'string') {
      throw new TourniquetError('CONFIG_INVALID', `head file ${this.opts.headFile} is not {position, hash}`);
    }
    return { position: parsed.position, hash: parsed.hash };
  }

  /** Compares the store with the head file, then starts the sweeps (the first one at once). */
  open(db: Database.Database): void {
    this.db = db;
    this.stmts = statements(db);
    let fromFile: ChainHead | undefined;
    try {
      fromFile = this.readHeadFile();
    } catch (e) {
      this.markBroken([
        {
          position: 0,
          id: null,
          problem: 'rewritten',
          detail: `the head file cannot be read: ${(e as Error).message}`,
        },
      ]);
    }
    if (fromFile) {
      this.known = fromFile;
    } else if (this.opts.headFile) {
      this.opts.log?.info(
        { headFile: this.opts.headFile },
        'no chain head file yet: the current head is trusted until the first full sweep has checked it',
      );
    }
    if (!this.broken) {
      const problems = this.checkSinceKnown(db);
      if (problems.length > 0) this.markBroken(problems);
      else this.persistHead();
    }
    this.scheduleSweep(0);
  }

  /**
   * Inside an append transaction, before new rows are chained: throws CHAIN_BROKEN when the stored
   * chain no longer continues the head this process knew.
   */
  beforeAppend(db: Database.Database): void {
    if (this.broken) throw chainBrokenError(this.status());
    const problems = this.checkSinceKnown(db);
    if (problems.length > 0) {
      this.markBroken(problems);
      throw chainBrokenError(this.status());
    }
  }

  /** After an append transaction committed: the new head is known (and written to the head file). */
  committed(head: ChainHead): void {
    if (this.known && head.position <= this.known.position) return;
    this.known = { ...head };
    this.persistHead();
  }

  /**
   * Compares the stream with a head a witness holds (the latest one read at start): the row at its
   * position must still have its hash. It is also checked by every later sweep. A head file forged
   * together with the database does not fool this; a witness out of the attacker's reach does.
   */
  checkAnchor(anchor: ChainAnchor): ChainStatus {
    const db = this.db;
    if (!db || this.broken) return this.status();
    this.anchor = anchor;
    const last = db.prepare<[], { p: number | null }>('SELECT MAX(position) AS p FROM events').get()?.p ?? 0;
    const row = db
      .prepare<[number], { hash: string }>('SELECT hash FROM events WHERE position = ?')
      .get(anchor.position);
    const from = `${anchor.source ? ` from ${anchor.source}` : ''}${anchor.at ? ` recorded ${anchor.at}` : ''}`;
    if (!row) {
      this.markBroken([
        {
          position: Math.min(anchor.position, last + 1),
          id: null,
          problem: anchor.position > last ? 'truncated' : 'missing',
          detail: `the anchor${from} says position ${anchor.position} existed with hash ${anchor.hash}; the last row is at ${last}`,
        },
      ]);
    } else if (row.hash !== anchor.hash) {
      this.markBroken([
        {
          position: anchor.position,
          id: null,
          problem: 'rewritten',
          detail: `the row at anchored position ${anchor.position} has hash ${row.hash}, the anchor${from} says ${anchor.hash}: the chain was rewritten at or before it`,
        },
      ]);
    }
    return this.status();
  }

  /** Runs a full sweep now (tests and operators); resolves when it is done. */
  async sweep(): Promise<ChainStatus> {
    if (!this.sweeping) {
      this.sweeping = this.runSweep().finally(() => {
        this.sweeping = undefined;
      });
    }
    await this.sweeping;
    return this.status();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    await this.sweeping;
    if (this.headFd !== undefined) closeSync(this.headFd);
    this.headFd = undefined;
  }

  private scheduleSweep(delayMs: number): void {
    if (this.closed) return;
    this.sweepTimer = setTimeout(() => {
      void this.sweep().then(() => {
        const every = this.opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
        if (every > 0) this.scheduleSweep(every);
      });
    }, delayMs);
    this.sweepTimer.unref();
  }

  private async runSweep(): Promise<void> {
    const db = this.db;
    if (!db || this.broken || this.closed) return;
    const known = this.known;
    try {
      const verdict = await verifyChainPaged(db, {
        anchors: [
          ...(known ? [{ ...known, source: 'the head this server last recorded' }] : []),
          ...(this.anchor ? [this.anchor] : []),
        ],
        isOpen: () => !this.closed && db.open,
      });
      if (!verdict) return;
      this.lastSweep = { at: this.now().toISOString(), checked: verdict.checked };
      if (!verdict.ok) this.markBroken(verdict.problems);
    } catch (e) {
      if (this.closed || !db.open) return;
      // A sweep that cannot read the store says nothing about tampering; the store's own errors
      // reach the writers. Logged so that a sweep that never completes is visible.
      this.opts.log?.warn({ err: e }, 'chain sweep failed; retried at the next interval');
    }
  }

  private markBroken(problems: readonly ChainBreak[]): void {
    if (this.broken) return;
    this.broken = { since: this.now().toISOString(), problems: problems.slice(0, MAX_REPORTED) };
    this.opts.log?.error(
      {
        code: 'CHAIN_BROKEN',
        problems: problems.slice(0, 5),
        problemCount: problems.length,
        knownHead: this.known,
      },
      'event store hash chain no longer matches the recorded head: writes refused and /readyz false; run `tourniquet audit verify --anchor <witness>` and investigate before restarting',
    );
    this.opts.onBroken?.(problems);
  }

  /** The checks that cost a few indexed reads: the known head, rows after it, the position sequence. */
  private checkSinceKnown(db: Database.Database): ChainBreak[] {
    if (this.db !== db || !this.stmts) {
      this.db = db;
      this.stmts = statements(db);
    }
    const { tail: tailStmt, rowAt: rowStmt, after } = this.stmts;
    const rowAt = (position: number) => rowStmt.get(position);
    const tail = tailStmt.get();
    const last = tail?.max ?? 0;
    const seq = tail?.seq ?? 0;
    const problems: ChainBreak[] = [];
    const known = this.known;
    let from: ChainHead = { position: 0, hash: GENESIS };
    if (known) {
      const atKnown = rowAt(known.position);
      if (!atKnown) {
        problems.push({
          position: Math.min(known.position, last + 1),
          id: null,
          problem: last < known.position ? 'truncated' : 'missing',
          detail: `the head this server recorded (position ${known.position}, hash ${known.hash}) is gone; the last row is at ${last}`,
        });
        return problems;
      }
      if (atKnown.hash !== known.hash) {
        problems.push({
          position: known.position,
          id: atKnown.id,
          problem: 'rewritten',
          detail: `the row at the recorded head position ${known.position} has hash ${atKnown.hash}, this server recorded ${known.hash}: the chain was rewritten at or before it`,
        });
        return problems;
      }
      const prev = known.position === 1 ? GENESIS : rowAt(known.position - 1)?.hash;
      const { hash, ...content } = atKnown;
      if (prev === undefined || chainHash(prev, content) !== hash) {
        problems.push({
          position: known.position,
          id: atKnown.id,
          problem: prev === undefined ? 'missing' : 'altered',
          detail: `event ${atKnown.id} at the recorded head position ${known.position} no longer links to the event before it`,
        });
        return problems;
      }
      from = known;
    } else if (last > 0) {
      // Nothing known yet (no head file): trust the current head; the sweep checks everything behind it.
      const atLast = rowAt(last)!;
      from = { position: last, hash: atLast.hash };
    }
    // Rows appended since (by another process sharing the file) must continue the chain.
    let prev = from;
    for (const row of after.iterate(from.position)) {
      const { hash, ...content } = row;
      if (row.position !== prev.position + 1 || chainHash(prev.hash, content) !== hash) {
        problems.push({
          position: row.position,
          id: row.id,
          problem: row.position !== prev.position + 1 ? 'missing' : 'altered',
          detail: `event ${row.id} at position ${row.position} does not continue the chain from position ${prev.position}`,
        });
        return problems;
      }
      prev = { position: row.position, hash };
    }
    if (seq > last) {
      problems.push({
        position: last + 1,
        id: null,
        problem: 'missing',
        detail: `position ${last + 1}..${seq} is missing: the last ${seq - last} event(s) were deleted`,
      });
      return problems;
    }
    if (prev.position > (this.known?.position ?? 0)) this.known = { ...prev };
    return problems;
  }

  private persistHead(): void {
    if (!this.opts.headFile || !this.known) return;
    // One fixed-size record rewritten in place through a descriptor kept open: a few microseconds per
    // commit. It stays within one page, so a reader never sees a mix of two heads; no fsync: a head
    // file that lags the database after a power loss is still a valid (older) head.
    const record = JSON.stringify({ ...this.known, at: this.now().toISOString() }).padEnd(
      HEAD_RECORD_BYTES - 1,
    );
    // not O_APPEND: the record is rewritten at offset 0
    this.headFd ??= openSync(this.opts.headFile, existsSync(this.opts.headFile) ? 'r+' : 'w+');
    if (this.headFdFresh) {
      ftruncateSync(this.headFd, 0);
      this.headFdFresh = false;
    }
    writeSync(this.headFd, `${record}\n`, 0);
  }
}

/** The head file's record size (JSON of position, hash and time, padded). */
const HEAD_RECORD_BYTES = 160;

function statements(db: Database.Database) {
  return {
    tail: db.prepare<[], { seq: number | null; max: number | null }>(
      "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events') AS seq, (SELECT MAX(position) FROM events) AS max",
    ),
    rowAt: db.prepare<[number], EventRow>('SELECT * FROM events WHERE position = ?'),
    after: db.prepare<[number], EventRow>('SELECT * FROM events WHERE position > ? ORDER BY position'),
  };
}
