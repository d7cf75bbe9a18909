import type { EventType, NewEvent, RecordedEvent } from '../../schemas/events.ts';
import type { StoreHealth } from './health.ts';

/**
 * Optimistic concurrency for append:
 * - 'any': no check;
 * - 'no_stream': the stream must not exist (first writer wins: claims, dedupe);
 * - 'stream_exists': the stream must exist;
 * - n: the stream's last revision must be exactly n (0-based).
 * A mismatch raises WrongExpectedRevisionError (retriable after a re-read).
 */
export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | number;

export interface AppendResult {
  /** Revision of the last event now in the stream. */
  nextRevision: number;
  /** Global position of the last appended event. */
  position: number;
}

export interface ReadAllOptions {
  /** Exclusive: events with position > after. 0 (default) reads from the start. */
  after?: number;
  limit?: number;
  /** Only these event types (server-side filter where the engine has one). */
  types?: readonly EventType[];
}

export interface SubscribeOptions extends Omit<ReadAllOptions, 'limit'> {
  /** Catch-up page size before switching to live. */
  pageSize?: number;
  /** Called once if the handler or the store fails: the subscription stops, nothing is skipped. */
  onError?: (err: unknown) => void;
  /** Called once the catch-up phase has read everything that existed when it started. */
  onLive?: () => void;
}

export interface Subscription {
  /** Position of the last event handled. */
  readonly position: number;
  stop(): Promise<void>;
  /** Resolves when the subscription has stopped (by stop() or by an error). */
  readonly done: Promise<void>;
}

export type EventHandler = (event: RecordedEvent) => void | Promise<void>;

/** The event store port: every adapter (SQLite, KurrentDB) passes test/contract/eventstore.contract.ts. */
export interface EventStore {
  readonly name: string;
  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * Appends to several streams at once. SQLite does it in one transaction (one fsync, all or nothing);
   * engines without multi-stream transactions append in order and stop at the first failure.
   */
  appendMany(
    batches: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>,
  ): Promise<AppendResult[]>;
  /** Events of one stream in revision order, from a revision (inclusive, default 0). */
  readStream(stream: string, opts?: { fromRevision?: number; limit?: number }): Promise<RecordedEvent[]>;
  /** Last revision of a stream, or 'no_stream'. */
  streamRevision(stream: string): Promise<number | 'no_stream'>;
  /** All events in global order, paged by position. */
  readAll(opts?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Position of the newest event (0 when empty). */
  headPosition(): Promise<number>;
  /** Catch-up subscription: reads history after `after`, then switches to live events, in order. */
  subscribeAll(opts: SubscribeOptions, handler: EventHandler): Subscription;
  /**
   * The recorded DetectionReceived holding a detection's `source` + `id` (the store-wide dedupe key),
   * where the store keeps an index of them (SQLite). Without it, callers look in the identity's stream.
   */
  findDetection?(source: string, id: string): Promise<RecordedEvent<'DetectionReceived'> | undefined>;
  /**
   * A raw vendor record's JSON text by its SHA-256 (raw-records.ts): a recorded DetectionReceived names
   * it in `rawRecord` instead of carrying it. Checked against the digest as it is read (CHAIN_BROKEN
   * when it no longer matches); undefined when the store holds no such record.
   */
  readRawRecord?(sha256: string): Promise<string | undefined>;
  /** Whether writes succeed now, and the storage faults seen (stores that track it: SQLite). */
  health?(): StoreHealth;
  /** After a fault, tries a small write so that health recovers without client traffic. */
  probeWrite?(): Promise<boolean>;
  getCheckpoint(name: string): Promise<number | undefined>;
  /**
   * Tamper evidence: walks the hash chain over every recorded event and reports every altered,
   * missing or reordered one, and, given anchors (heads recorded outside the database), tail
   * truncation and re-chaining. Only a store that keeps such a chain has it (SQLite).
   */
  verifyChain?(opts?: { anchors?: readonly ChainAnchor[] }): Promise<ChainVerdict>;
  saveCheckpoint(name: string, position: number): Promise<void>;
  close(): Promise<void>;
}

export const CHAIN_PROBLEMS = ['altered', 'missing', 'reordered', 'truncated', 'rewritten'] as const;
/**
 * - `altered`: a row's content no longer matches its stored hash (or the row before it was rewritten
 *   together with its own hash);
 * - `missing`: a position is absent (a row was deleted), including at the tail;
 * - `reordered`: a row's stored hash is a valid link for another position (rows moved or swapped);
 * - `truncated`: an anchored position is past the last row (the tail was cut, even with the position
 *   sequence put back);
 * - `rewritten`: the row at an anchored position no longer has the anchored hash (re-chained).
 */
type ChainProblem = (typeof CHAIN_PROBLEMS)[number];

export interface ChainBreak {
  position: number;
  /** The event at that position; for a missing row the id is not recoverable and this is null. */
  id: string | null;
  problem: ChainProblem;
  /** In words, naming the event (and for a missing row the stream and revision it held when known). */
  detail: string;
  stream?: string;
  revision?: number;
}

/** A chain head recorded outside the database: the row at `position` had `hash`. */
export interface ChainAnchor {
  position: number;
  hash: string;
  /** When it was recorded (ISO 8601), for the report. */
  at?: string;
  /** Where it came from (a witness name, the head file), for the report. */
  source?: string;
}

export interface ChainVerdict {
  ok: boolean;
  /** Rows whose link was checked (every row). */
  checked: number;
  /** The last row up to which the chain is intact: the head to anchor. */
  head: { position: number; hash: string } | null;
  /** The first problem by position (problems[0]), for readers of one problem. */
  firstBad?: ChainBreak;
  /** Every problem found, in position order (at most 1000 listed; `problemCount` counts them all). */
  problems: ChainBreak[];
  problemCount: number;
  /** Anchors compared with the stream. */
  anchors: { checked: number; matched: number };
}
