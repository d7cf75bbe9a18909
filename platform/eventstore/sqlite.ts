import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { NormalizedDetection } from '../../schemas/detection.ts';
import type { EventType, NewEvent, RecordedEvent } from '../../schemas/events.ts';
import {
  type DetectionHolder,
  DuplicateConflictError,
  TourniquetError,
  WrongExpectedRevisionError,
} from '../errors.ts';
import { catchUpSubscription } from './catch-up.ts';
import { ChainGuard, type ChainGuardOptions } from './chain-guard.ts';
import {
  type GroupCommitOptions,
  GroupCommitQueue,
  type GroupOutcome,
  type StreamBatch,
} from './group-commit.ts';
import { type StoreHealth, StoreHealthTracker, storageFault, storeUnavailable } from './health.ts';
import type {
  AppendResult,
  ChainAnchor,
  ChainVerdict,
  EventHandler,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  SubscribeOptions,
  Subscription,
} from './port.ts';
import { assertRawRecord, storedForm } from './raw-records.ts';
import { CURRENT_LINK, chainHash, type EventRow, GENESIS, verifySqliteChain } from './sqlite-chain.ts';
import { assertStorable } from './storable.ts';

/**
 * Durability of the embedded store.
 * - 'full' (default): WAL + synchronous=FULL. An append that returned is on disk and survives
 *   power loss; this is what makes "202 only once durably appended" true.
 * - 'normal': WAL + synchronous=NORMAL. Survives a process crash (SIGKILL) but an OS crash or
 *   power loss may lose the last transactions. Only for replay scratch stores and benchmarks.
 */
export type Durability = 'full' | 'normal';

export interface SqliteEventStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  durability?: Durability;
  /** Wall clock for `recordedAt`, injectable for tests. */
  now?: () => Date;
  /** How long a write waits for another connection's lock before failing as STORE_UNAVAILABLE (default 10 s). */
  busyTimeoutMs?: number;
  /** Poll interval for writers in other processes (same-process appends wake subscribers at once). */
  pollMs?: number;
  /**
   * Check the hash chain while serving (ChainGuard): every append first checks the stored chain still
   * continues the head this process knew, a head file beside the database carries that head across
   * restarts, and the whole chain is swept at an interval. A mismatch refuses appends (CHAIN_BROKEN).
   * Off by default (tests, replay scratch stores); the embedded stack and `serve` turn it on.
   */
  integrity?: Omit<ChainGuardOptions, 'headFile'> & { headFile?: string | false };
  /**
   * Group commit (group-commit.ts): concurrent appends share one transaction and one fsync, each in
   * its own savepoint. Off by default; the embedded stack turns it on for HTTP ingest.
   */
  groupCommit?: boolean | GroupCommitOptions;
}

/** Bytes a readiness probe writes after a storage fault (the default size limit of `raw`). */
const PROBE_BYTES = 256 * 1024;

const identityName = (i: NormalizedDetection['identity']) => ({
  provider: i.provider,
  id: i.id,
  type: i.type,
});

function toRecorded(r: EventRow): RecordedEvent {
  return {
    id: r.id,
    type: r.type as EventType,
    stream: r.stream,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
    causationId: r.causation_id,
    correlationId: r.correlation_id,
    schemaVersion: r.schema_version,
    data: JSON.parse(r.data),
    revision: r.revision,
    position: r.position,
  } as RecordedEvent;
}

/**
 * Rows written before link formats were numbered are format 1 (chain-hash.ts): a database created by
 * an earlier version gets the column with that default, and its rows keep verifying as they were.
 */
function addLinkColumn(db: Database.Database): void {
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(events)').all();
  if (columns.some((c) => c.name === 'link')) return;
  try {
    db.exec('ALTER TABLE events ADD COLUMN link INTEGER NOT NULL DEFAULT 1');
  } catch (err) {
    // another process opening the same file added it first
    if (!/duplicate column name/i.test((err as Error).message)) throw err;
  }
}

export class SqliteEventStore implements EventStore {
  readonly name = 'sqlite';
  readonly path: string;
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly appended = new EventEmitter();
  private readonly pollMs: number;
  private readonly stmts;
  private readonly txAppend;
  private readonly txAppendMany;
  private readonly txAppendGroups;
  private readonly commits: GroupCommitQueue | undefined;
  private closed = false;
  private readonly healthTracker: StoreHealthTracker;
  private lastProbe = 0;
  private readonly guard: ChainGuard | undefined;
  /**
   * Chain head inside the running transaction: the last hash and position, read once per transaction
   * rather than once per stream (a batch consumer appends to hundreds of streams in one).
   */
  private head: { hash: string; position: number } | null = null;

  constructor(opts: SqliteEventStoreOptions) {
    this.path = opts.path;
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    // 8 KiB pages for a new file (an existing one keeps its size). A DetectionReceived carries the
    // vendor's raw record (~2.5 KB of JSON): decider-shaped batches cost 63 µs/event with 4 KiB pages,
    // 54 with 8 KiB, 49 with 16 KiB; single small appends (API commands, executor steps) get slower as
    // pages grow (about 25% at 8 KiB, 50% at 16 KiB). 8 KiB is the compromise.
    this.db.pragma('page_size = 8192');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${(opts.durability ?? 'full') === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        stream TEXT NOT NULL,
        revision INTEGER NOT NULL,
        type TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        causation_id TEXT,
        correlation_id TEXT,
        schema_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        link INTEGER NOT NULL DEFAULT 1,
        UNIQUE (stream, revision)
      );
      CREATE INDEX IF NOT EXISTS events_type ON events (type, position);
      CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS raw_records (sha256 TEXT PRIMARY KEY, body TEXT NOT NULL);
    `);
    addLinkColumn(this.db);
    this.createDetectionIndex();
    this.now = opts.now ?? (() => new Date());
    this.healthTracker = new StoreHealthTracker(this.now);
    this.pollMs = opts.pollMs ?? 100;
    this.appended.setMaxListeners(0);
    this.stmts = {
      streamRev: this.db.prepare<[string], { revision: number }>(
        'SELECT revision FROM streams WHERE stream = ?',
      ),
      upsertStream: this.db.prepare(
        'INSERT INTO streams (stream, revision) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET revision = excluded.revision',
      ),
      lastHash: this.db.prepare<[], { hash: string }>(
        'SELECT hash FROM events ORDER BY position DESC LIMIT 1',
      ),
      nextPosition: this.db.prepare<[], { seq: number }>(
        "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
      ),
      insert: this.db.prepare(
        `INSERT INTO events (position, id, stream, revision, type, occurred_at, recorded_at, causation_id, correlation_id, schema_version, data, hash, link)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ${CURRENT_LINK})`,
      ),
      insertRaw: this.db.prepare<[string, string]>(
        'INSERT INTO raw_records (sha256, body) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ),
      rawRecord: this.db.prepare<[string], { body: string }>('SELECT body FROM raw_records WHERE sha256 = ?'),
      byId: this.db.prepare<[string], { stream: string; revision: number; position: number }>(
        'SELECT stream, revision, position FROM events WHERE id = ?',
      ),
      readStream: this.db.prepare<[string, number, number], EventRow>(
        'SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?',
      ),
      readAll: this.db.prepare<[number, number], EventRow>(
        'SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?',
      ),
      head: this.db.prepare<[], { p: number | null }>('SELECT MAX(position) AS p FROM events'),
      claimDetection: this.db.prepare<[string, string, number]>(
        'INSERT INTO detection_keys (source, id, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      detectionAt: this.db.prepare<[string, string], EventRow>(
        'SELECT e.* FROM detection_keys k JOIN events e ON e.position = k.position WHERE k.source = ? AND k.id = ?',
      ),
      getCheckpoint: this.db.prepare<[string], { position: number }>(
        'SELECT position FROM checkpoints WHERE name = ?',
      ),
      saveCheckpoint: this.db.prepare(
        'INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at',
      ),
    };
    if (opts.integrity) {
      const headFile = opts.integrity.headFile ?? (opts.path === ':memory:' ? false : `${opts.path}.head`);
      this.guard = new ChainGuard({ ...opts.integrity, headFile });
      this.guard.open(this.db);
    }
    this.txAppend = this.db.transaction(
      (stream: string, events: readonly NewEvent[], expected: ExpectedRevision) => {
        this.head = null; // a transaction that threw (rolled back) may have left one
        return this.appendTx(stream, events, expected);
      },
    );
    this.txAppendMany = this.db.transaction(
      (bs: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>) => {
        this.head = null;
        return bs.map((b) => this.appendTx(b.stream, b.events, b.expected));
      },
    );
    // Called inside txAppendGroups, a transaction function runs as a savepoint.
    const savepoint = this.db.transaction((bs: readonly StreamBatch[]) =>
      bs.map((b) => this.appendTx(b.stream, b.events, b.expected)),
    );
    this.txAppendGroups = this.db.transaction((groups: ReadonlyArray<readonly StreamBatch[]>) => {
      this.head = null;
      return groups.map((bs): GroupOutcome => {
        const head = this.head ? { ...this.head } : null;
        try {
          return { results: savepoint(bs) };
        } catch (error) {
          this.head = head; // the savepoint's rows are gone: the chain continues from before it
          // The storage failed, not this append, or SQLite rolled the whole transaction back: the
          // group fails as a whole (nothing of it is written).
          if (storageFault(error) || !this.db.inTransaction) throw error;
          return { error };
        }
      });
    });
    if (opts.groupCommit) {
      this.commits = new GroupCommitQueue(
        (groups) => this.commitGroup(groups),
        opts.groupCommit === true ? {} : opts.groupCommit,
      );
    }
  }

  /** One group-commit transaction: each append in its own savepoint (see group-commit.ts). */
  private commitGroup(groups: ReadonlyArray<readonly StreamBatch[]>): GroupOutcome[] {
    if (this.closed) throw this.closedError();
    const outcomes = this.write(() => this.txAppendGroups.immediate(groups));
    this.afterCommit();
    let last = 0;
    for (const o of outcomes)
      if ('results' in o && o.results.length > 0)
        last = Math.max(last, o.results[o.results.length - 1]!.position);
    if (last > 0) this.appended.emit('append', last);
    return outcomes;
  }

  /** The running chain check, when the store was opened with `integrity`. */
  get integrity(): ChainGuard | undefined {
    return this.guard;
  }

  /** The underlying database, for projections that live in the same file. */
  get database(): Database.Database {
    return this.db;
  }

  private readonly appendTx = (
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): AppendResult => {
    const current = this.stmts.streamRev.get(stream)?.revision;
    const actual: number | 'no_stream' = current ?? 'no_stream';
    const first = events[0];
    // Idempotent retry: the same batch appended again (same first event id in this stream) succeeds without writing.
    if (first) {
      const existing = this.stmts.byId.get(first.id);
      if (existing) {
        if (existing.stream !== stream) {
          throw new TourniquetError(
            'CONFLICT',
            `event id ${first.id} already exists in stream ${existing.stream}`,
            {
              status: 409,
            },
          );
        }
        const lastId = events[events.length - 1]!.id;
        const last = this.stmts.byId.get(lastId);
        if (last && last.stream === stream) return { nextRevision: last.revision, position: last.position };
      }
    }
    if (expected === 'no_stream' && current !== undefined)
      throw new WrongExpectedRevisionError(stream, expected, actual);
    if (expected === 'stream_exists' && current === undefined)
      throw new WrongExpectedRevisionError(stream, expected, actual);
    if (typeof expected === 'number' && current !== expected)
      throw new WrongExpectedRevisionError(stream, expected, actual);
    if (events.length === 0) return { nextRevision: current ?? -1, position: this.stmts.head.get()?.p ?? 0 };

    if (!this.head) this.guard?.beforeAppend(this.db);
    this.head ??= {
      hash: this.stmts.lastHash.get()?.hash ?? GENESIS,
      position: this.stmts.nextPosition.get()?.seq ?? 0,
    };
    let prevHash = this.head.hash;
    let position = this.head.position;
    let revision = current ?? -1;
    const recordedAt = this.now().toISOString();
    for (const e of events) {
      position += 1;
      revision += 1;
      // serialized once: the same text is stored and hashed
      const stored = storedForm(e);
      const row = {
        position,
        id: e.id,
        stream,
        revision,
        type: e.type,
        occurred_at: e.occurredAt,
        recorded_at: recordedAt,
        causation_id: e.causationId,
        correlation_id: e.correlationId,
        schema_version: e.schemaVersion,
        data: stored.data,
        link: CURRENT_LINK,
      };
      const hash = chainHash(prevHash, row);
      if (stored.raw) this.stmts.insertRaw.run(stored.raw.ref.sha256, stored.raw.text);
      this.stmts.insert.run(
        position,
        e.id,
        stream,
        revision,
        e.type,
        e.occurredAt,
        recordedAt,
        e.causationId,
        e.correlationId,
        e.schemaVersion,
        row.data,
        hash,
      );
      if (e.type === 'DetectionReceived') this.claimDetection(e, stream, position);
      prevHash = hash;
    }
    this.head.hash = prevHash;
    this.head.position = position;
    this.stmts.upsertStream.run(stream, revision);
    return { nextRevision: revision, position };
  };

  /**
   * The store-wide dedupe index: `source` + `id` of every DetectionReceived, whatever identity it
   * names. A store written before the index existed gets it filled from its events once (the first
   * copy of a key wins, as it did for the decider).
   */
  private createDetectionIndex(): void {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'detection_keys'")
      .get();
    if (exists) return;
    this.db.exec(`
      BEGIN IMMEDIATE;
      CREATE TABLE IF NOT EXISTS detection_keys (
        source TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (source, id)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO detection_keys (source, id, position)
        SELECT json_extract(data, '$.detection.source'), json_extract(data, '$.detection.id'), position
        FROM events WHERE type = 'DetectionReceived' ORDER BY position;
      COMMIT;
    `);
  }

  /**
   * Claims a detection's key inside the append transaction, after its row is written; a key already
   * held by another event (earlier, or earlier in this same transaction) is a DuplicateConflictError,
   * which rolls the whole transaction back.
   */
  private claimDetection(e: NewEvent, stream: string, position: number): void {
    const d = (e.data as { detection?: NormalizedDetection }).detection;
    // only a detection that has a key can claim one (every validated detection has)
    if (typeof d?.source !== 'string' || typeof d.id !== 'string') return;
    if (this.stmts.claimDetection.run(d.source, d.id, position).changes === 1) return;
    const held = this.stmts.detectionAt.get(d.source, d.id);
    const recorded = held
      ? (JSON.parse(held.data) as { detection: NormalizedDetection }).detection
      : undefined;
    const refused: DetectionHolder = { identity: identityName(d.identity), stream };
    throw new DuplicateConflictError({
      source: d.source,
      id: d.id,
      recorded:
        held && recorded
          ? { identity: identityName(recorded.identity), stream: held.stream, eventId: held.id }
          : refused,
      refused,
      reason: held?.stream === stream ? 'different_content' : 'other_identity',
    });
  }

  /** A raw record's JSON text by its SHA-256 (raw-records.ts), checked against it. */
  async readRawRecord(sha256: string): Promise<string | undefined> {
    this.assertOpen();
    return assertRawRecord(sha256, this.stmts.rawRecord.get(sha256)?.body);
  }

  /** The recorded DetectionReceived holding `source` + `id`, if any. */
  async findDetection(source: string, id: string): Promise<RecordedEvent<'DetectionReceived'> | undefined> {
    this.assertOpen();
    const row = this.stmts.detectionAt.get(source, id);
    return row ? (toRecorded(row) as RecordedEvent<'DetectionReceived'>) : undefined;
  }

  async append(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.assertOpen();
    for (const e of events) assertStorable(e, stream);
    if (this.commits) return (await this.commits.enqueue([{ stream, events, expected }]))[0]!;
    const result = this.write(() => this.txAppend.immediate(stream, events, expected));
    this.afterCommit();
    if (events.length > 0) this.appended.emit('append', result.position);
    return result;
  }

  /** The transaction's new head (when it chained rows) becomes the head the guard knows. */
  private afterCommit(): void {
    if (this.guard && this.head) this.guard.committed(this.head);
    this.head = null;
  }

  /** Appends to several streams in one transaction (one fsync): used by batch consumers. */
  async appendMany(
    batches: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>,
  ): Promise<AppendResult[]> {
    this.assertOpen();
    for (const b of batches) for (const e of b.events) assertStorable(e, b.stream);
    if (this.commits) return this.commits.enqueue(batches);
    const results = this.write(() => this.txAppendMany.immediate(batches));
    this.afterCommit();
    if (results.length > 0) this.appended.emit('append', results[results.length - 1]!.position);
    return results;
  }

  /**
   * Runs a write: a storage fault (disk full, read-only, locked, corrupt, I/O) becomes a retriable
   * STORE_UNAVAILABLE and marks the store not writable; a write that succeeds marks it writable again.
   * The transaction rolled back, so nothing of the write is in the store.
   */
  private write<T>(run: () => T): T {
    let result: T;
    try {
      result = run();
    } catch (err) {
      const fault = storageFault(err);
      if (!fault) throw err;
      this.healthTracker.fault(fault, err);
      throw storeUnavailable(fault, err);
    }
    this.healthTracker.writeSucceeded();
    return result;
  }

  /** Whether writes currently succeed, and the storage faults seen (for /readyz and metrics). */
  health(): StoreHealth {
    return this.healthTracker.health;
  }

  onHealthChange(listener: (h: StoreHealth, cause?: unknown) => void): void {
    this.healthTracker.onChange(listener);
  }

  /**
   * After a fault: tries a small write (a checkpoint row) so readiness comes back once storage has
   * recovered even when no client writes; at most once per `minIntervalMs`.
   */
  async probeWrite(minIntervalMs = 1000): Promise<boolean> {
    if (this.healthTracker.health.writable) return true;
    const now = Date.now();
    if (now - this.lastProbe < minIntervalMs) return false;
    this.lastProbe = now;
    try {
      // As large as the largest field a request may carry: a write of a few bytes can succeed on a
      // disk that still has no room for a detection.
      this.write(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS write_probe (blob BLOB)');
        this.db.prepare('INSERT INTO write_probe (blob) VALUES (?)').run(Buffer.alloc(PROBE_BYTES));
      });
      this.db.exec('DELETE FROM write_probe');
    } catch {
      return false;
    }
    return this.healthTracker.health.writable;
  }

  async readStream(
    stream: string,
    opts: { fromRevision?: number; limit?: number } = {},
  ): Promise<RecordedEvent[]> {
    this.assertOpen();
    return this.stmts.readStream.all(stream, opts.fromRevision ?? 0, opts.limit ?? -1).map(toRecorded);
  }

  async streamRevision(stream: string): Promise<number | 'no_stream'> {
    this.assertOpen();
    return this.stmts.streamRev.get(stream)?.revision ?? 'no_stream';
  }

  async readAll(opts: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = opts.after ?? 0;
    const limit = opts.limit ?? -1;
    if (opts.types && opts.types.length > 0) {
      const placeholders = opts.types.map(() => '?').join(',');
      const rows = this.db
        .prepare<unknown[], EventRow>(
          `SELECT * FROM events WHERE position > ? AND type IN (${placeholders}) ORDER BY position LIMIT ?`,
        )
        .all(after, ...opts.types, limit);
      return rows.map(toRecorded);
    }
    return this.stmts.readAll.all(after, limit).map(toRecorded);
  }

  /** See EventStore.verifyChain; the rows and their links are checked in sqlite-chain.ts. */
  async verifyChain(opts: { anchors?: readonly ChainAnchor[] } = {}): Promise<ChainVerdict> {
    this.assertOpen();
    return verifySqliteChain(this, opts);
  }

  /** Raw rows with their chain hashes, for `audit verify`. */
  *iterateRows(): IterableIterator<EventRow> {
    yield* this.db.prepare<[], EventRow>('SELECT * FROM events ORDER BY position').iterate();
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.stmts.head.get()?.p ?? 0;
  }

  subscribeAll(opts: SubscribeOptions, handler: EventHandler): Subscription {
    this.assertOpen();
    return catchUpSubscription(
      (o) => (this.closed ? Promise.resolve([]) : this.readAll(o)),
      (timeoutMs) =>
        new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.appended.off('append', done);
            resolve();
          };
          const timer = setTimeout(done, timeoutMs);
          this.appended.once('append', done);
        }),
      { pollMs: this.pollMs, ...opts },
      handler,
    );
  }

  async getCheckpoint(name: string): Promise<number | undefined> {
    this.assertOpen();
    return this.stmts.getCheckpoint.get(name)?.position;
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    this.assertOpen();
    this.write(() => this.stmts.saveCheckpoint.run(name, position, this.now().toISOString()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commits?.flush(); // queued appends are written (or fail) before the database closes
    this.closed = true;
    await this.guard?.close();
    this.appended.emit('append', 0);
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): TourniquetError {
    return new TourniquetError('STORE_UNAVAILABLE', 'event store is closed', {
      retriable: false,
      status: 503,
    });
  }
}
