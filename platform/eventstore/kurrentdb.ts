/**
 * The KurrentDB (EventStoreDB) adapter of the event store port, over @kurrent/kurrentdb-client 1.x.
 * It passes the same contract suite as the SQLite adapter (test/contract/eventstore.contract.ts, run by
 * kurrentdb.int.test.ts where a Docker engine exists). Mapping, in short:
 *
 * - Streams: one Tourniquet stream = one KurrentDB stream of the same name.
 * - Revisions: ours are the 0-based revision of the stream's last event, exactly KurrentDB's stream
 *   revision, carried as bigint by the client. ExpectedRevision 'any' | 'no_stream' | 'stream_exists'
 *   map to ANY | NO_STREAM | STREAM_EXISTS, a number n to the bigint n. A WrongExpectedVersionError
 *   becomes our WrongExpectedRevisionError (retriable after a re-read).
 * - Event ids: KurrentDB requires UUIDs. Each event's id is a deterministic UUID (version 5 layout,
 *   sha1 over a fixed Tourniquet namespace + our id), so a retried append carries the same UUIDs and
 *   KurrentDB's own idempotency check recognises it. Our id, causation and correlation ids,
 *   occurredAt and schemaVersion travel in the event metadata, so a read gives back exactly the
 *   envelope that was appended (`$correlationId`/`$causationId` are set too, for KurrentDB's
 *   by-correlation projections). `recordedAt` is the server's `created` time.
 * - Positions: our numeric position is the event's commit position in the transaction log (a byte
 *   offset; for every event written without legacy TCP transactions commit == prepare). Numbers are
 *   exact up to 2^53 (9 PB of log); beyond that a read fails loudly instead of rounding. Position 0
 *   means "from the start" (no event lives at 0). Only positions of real records may be handed to
 *   the server: reading from the middle of a record fails or, in the active chunk, may read nothing.
 *   So a numeric `after` is resolved before use: positions this store has seen (appends, reads,
 *   subscriptions, checkpoints) are used as is; an unknown number is verified with a one-event read
 *   (the record at that position must be exactly there); anything else starts from the nearest known
 *   position below it, or from the start, and skips events up to `after`. Never a skipped event.
 * - readAll / subscribeAll read `$all` with a server-side event-type filter: the requested types as an
 *   anchored regex, or, without types, every non-system event (`^[^$]`). Link events and system
 *   events never reach handlers.
 * - Subscriptions use subscribeToAll (server-pushed, catch-up then live). A dropped subscription
 *   (server restart, leader change, network) reconnects with exponential backoff from the last
 *   handled event's position; events at or before it are skipped on delivery, so nothing is handled
 *   twice by one subscription and nothing is skipped. After `reconnect.maxAttempts` consecutive
 *   failures it stops and reports a retriable STORE_UNAVAILABLE through onError. A handler error
 *   stops it at once (reported as is). onLive fires once every matching event that existed when the
 *   subscription started has been handled (computed from the head at start; independent of the
 *   server's caught-up message, which only 23.10+ sends).
 * - Checkpoints: a normal stream `checkpoint-<name>` holding `$tq-checkpoint` events (position, commit,
 *   prepare). The `$` type keeps them out of readAll, subscriptions and headPosition without needing
 *   the admin rights a `$`-stream would; the stream's `$maxCount` is set (best effort) when created.
 * - appendMany: KurrentDB has no multi-stream transaction in the 1.x append API this adapter uses, so
 *   batches are appended one after another, in order, stopping at the first failure (earlier
 *   batches stay written; every batch is idempotent by event id, so the caller retries the whole).
 * - Append batching: appendToStream goes over the client's batch-append stream when the server
 *   supports it (one gRPC stream, many appends in flight); `batchAppendSize` (bytes) is passed through.
 *
 * Differences from the SQLite adapter (none of them visible to the contract suite): a retried append is
 * recognised by KurrentDB's idempotency check, which is exact for a numeric or 'no_stream' expected
 * revision and best effort (a server-side cache) for 'any'; an event id reused in another stream is
 * not rejected (SQLite's ids are globally unique); there is no hash chain (audit verify is SQLite-only).
 * - Raw records: a DetectionReceived's raw vendor record is kept apart, as in SQLite (raw-records.ts,
 *   the same stored form and digest), in a content-addressed stream `raw-record-<sha256>` holding one
 *   `$tq-raw-record` event, appended before the event that names it (no multi-stream transaction).
 *
 * The client package is loaded lazily (KurrentDbEventStore.connect) so the rest of Tourniquet, and
 * the embedded mode, need neither it nor its native bridge.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventType, NewEvent, RecordedEvent } from '../../schemas/events.ts';
import { TourniquetError, WrongExpectedRevisionError } from '../errors.ts';
import type {
  AppendResult,
  EventHandler,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  SubscribeOptions,
  Subscription,
} from './port.ts';
import { assertRawRecord, withRawApart } from './raw-records.ts';
import { assertStorable } from './storable.ts';

// ---------------------------------------------------------------------------------------------------
// The part of @kurrent/kurrentdb-client 1.x this adapter uses (structural: the package is optional).

export interface KdbPosition {
  commit: bigint;
  prepare: bigint;
}
export type KdbReadPosition = 'start' | 'end' | KdbPosition;
export type KdbStreamState = 'any' | 'no_stream' | 'stream_exists' | bigint;

export interface KdbFilter {
  filterOn: 'eventType' | 'streamName';
  regex: string;
  checkpointInterval: number;
  maxSearchWindow?: number;
}

export interface KdbEventData {
  id: string;
  contentType: 'application/json';
  type: string;
  data: Record<string | number, unknown>;
  metadata: Record<string, unknown>;
}

export interface KdbRecordedEvent {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  created: Date;
  data: unknown;
  metadata: unknown;
  isJson: boolean;
  position?: KdbPosition;
}

export interface KdbResolvedEvent {
  event?: KdbRecordedEvent;
  link?: KdbRecordedEvent;
  commitPosition?: bigint;
}

export interface KdbSubscription extends AsyncIterable<KdbResolvedEvent> {
  unsubscribe(): Promise<void>;
}

export interface KurrentDbClientLike {
  appendToStream(
    streamName: string,
    events: KdbEventData[],
    options?: { streamState?: KdbStreamState; batchAppendSize?: number },
  ): Promise<{ success: boolean; nextExpectedRevision: bigint; position?: KdbPosition }>;
  readStream(
    streamName: string,
    options?: {
      fromRevision?: 'start' | 'end' | bigint;
      maxCount?: number | bigint;
      direction?: 'forwards' | 'backwards';
    },
  ): AsyncIterable<KdbResolvedEvent>;
  readAll(options?: {
    fromPosition?: KdbReadPosition;
    maxCount?: number | bigint;
    direction?: 'forwards' | 'backwards';
    resolveLinkTos?: boolean;
    filter?: KdbFilter;
  }): AsyncIterable<KdbResolvedEvent>;
  subscribeToAll(options?: {
    fromPosition?: KdbReadPosition;
    resolveLinkTos?: boolean;
    filter?: KdbFilter;
  }): KdbSubscription;
  setStreamMetadata(streamName: string, metadata: { maxCount?: number }): Promise<unknown>;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Pure mappings (unit-tested in kurrentdb.unit.test.ts)

/** Fixed namespace of Tourniquet event UUIDs (a random v4 UUID chosen once; never change it). */
const TOURNIQUET_UUID_NAMESPACE = '6f1c2f7e-3a5b-4c8d-9e0f-7a1b2c3d4e5f';

/** RFC 9562 name-based UUID, version 5 (sha1), of `name` in `namespace`. */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new TypeError(`not a UUID: ${namespace}`);
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The KurrentDB event id (a UUID) of a Tourniquet event id: deterministic, so retries dedupe. */
export function eventUuid(id: string): string {
  return uuidV5(TOURNIQUET_UUID_NAMESPACE, id);
}

function invalid(message: string): TourniquetError {
  return new TourniquetError('VALIDATION_FAILED', message, { status: 400 });
}

/** Our ExpectedRevision → the client's stream state (numbers: 0-based last revision → bigint). */
export function toStreamState(expected: ExpectedRevision): KdbStreamState {
  if (expected === 'any' || expected === 'no_stream' || expected === 'stream_exists') return expected;
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw invalid(
      `expected revision must be 'any', 'no_stream', 'stream_exists' or an integer >= 0, got ${expected}`,
    );
  }
  return BigInt(expected);
}

/** The client's bigint revision → our number (exact up to 2^53 - 1). */
export function revisionToNumber(revision: bigint): number {
  if (revision < 0n || revision > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TourniquetError('INTERNAL', `stream revision ${revision} is outside 0..2^53-1`);
  }
  return Number(revision);
}

/** The client's "actual state" of a stream → ours: a revision or 'no_stream' (negative = no stream). */
export function actualStateToRevision(actual: unknown): number | 'no_stream' {
  if (typeof actual === 'bigint') return actual < 0n ? 'no_stream' : revisionToNumber(actual);
  if (typeof actual === 'number') return actual < 0 ? 'no_stream' : actual;
  return 'no_stream';
}

/** A log position → our numeric position: the commit position, exact below 2^53 or an error. */
export function positionToNumber(p: KdbPosition): number {
  if (p.commit < 0n || p.commit > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TourniquetError(
      'INTERNAL',
      `commit position ${p.commit} does not fit a JavaScript number exactly (the log passed 2^53 bytes)`,
    );
  }
  return Number(p.commit);
}

/** Our numeric position → a log position (commit == prepare for every non-transactional event); 0 → start. */
export function numberToPosition(n: number): KdbReadPosition {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`position must be an integer >= 0, got ${n}`);
  if (n === 0) return 'start';
  const b = BigInt(n);
  return { commit: b, prepare: b };
}

const SYSTEM_EXCLUDING_REGEX = '^[^$].*';

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Server-side event-type filter: exactly these types, or (none given) every non-system event. */
export function typeFilter(types?: readonly string[]): KdbFilter {
  const regex =
    types && types.length > 0
      ? `^(?:${[...new Set(types)].map(escapeRegex).join('|')})$`
      : SYSTEM_EXCLUDING_REGEX;
  return { filterOn: 'eventType', regex, checkpointInterval: 1 };
}

/** What the metadata of every Tourniquet event carries (besides the `$`-keys KurrentDB understands). */
interface EnvelopeMetadata {
  tqId: string;
  occurredAt: string;
  causationId: string | null;
  correlationId: string | null;
  schemaVersion: number;
  $correlationId?: string;
  $causationId?: string;
}

/**
 * A Tourniquet event → the client's JSON event (deterministic UUID, envelope in metadata); `data` is
 * the event's data as recorded (raw-records.ts: a detection's raw record apart), by default as appended.
 */
export function toEventData(e: NewEvent, data: object = e.data): KdbEventData {
  const metadata: EnvelopeMetadata = {
    tqId: e.id,
    occurredAt: e.occurredAt,
    causationId: e.causationId,
    correlationId: e.correlationId,
    schemaVersion: e.schemaVersion,
    ...(e.correlationId !== null ? { $correlationId: e.correlationId } : {}),
    ...(e.causationId !== null ? { $causationId: e.causationId } : {}),
  };
  return {
    id: eventUuid(e.id),
    contentType: 'application/json',
    type: e.type,
    data: data as Record<string, unknown>,
    metadata: metadata as unknown as Record<string, unknown>,
  };
}

function isEnvelopeMetadata(m: unknown): m is EnvelopeMetadata {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return (
    typeof r.tqId === 'string' &&
    typeof r.occurredAt === 'string' &&
    (r.causationId === null || typeof r.causationId === 'string') &&
    (r.correlationId === null || typeof r.correlationId === 'string') &&
    typeof r.schemaVersion === 'number'
  );
}

/** The position of a recorded event, whichever way the client reports it. */
function recordPosition(e: KdbRecordedEvent, commitPosition?: bigint): number | undefined {
  if (e.position) return positionToNumber(e.position);
  if (commitPosition !== undefined)
    return positionToNumber({ commit: commitPosition, prepare: commitPosition });
  return undefined;
}

/** A recorded KurrentDB event → the Tourniquet envelope it was appended as. */
export function fromRecordedEvent(e: KdbRecordedEvent, commitPosition?: bigint): RecordedEvent {
  if (!e.isJson || !isEnvelopeMetadata(e.metadata)) {
    throw new TourniquetError(
      'DECODE_FAILED',
      `event ${e.streamId}@${e.revision} (${e.type}) was not written by Tourniquet: no envelope metadata`,
      { details: { stream: e.streamId, revision: String(e.revision), type: e.type } },
    );
  }
  const position = recordPosition(e, commitPosition);
  if (position === undefined) {
    throw new TourniquetError(
      'INTERNAL',
      `KurrentDB returned no position for ${e.streamId}@${e.revision}; servers before 22.6 are not supported`,
    );
  }
  const m = e.metadata;
  return {
    id: m.tqId,
    type: e.type as EventType,
    stream: e.streamId,
    occurredAt: m.occurredAt,
    recordedAt: e.created.toISOString(),
    causationId: m.causationId,
    correlationId: m.correlationId,
    schemaVersion: m.schemaVersion,
    data: e.data,
    revision: revisionToNumber(e.revision),
    position,
  } as RecordedEvent;
}

/** The client error's `type` (its ErrorType string), if it is one of the client's command errors. */
function clientErrorType(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const t = (err as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

/** Client error types that say the server could not be reached (or is not the leader). */
const UNREACHABLE = new Set(['unavailable', 'deadline-exceeded', 'timeout', 'not-leader']);
/** Client error types worth retrying later: unreachable, or failures of unknown cause (the bridge's default). */
const TRANSIENT = new Set([...UNREACHABLE, 'unknown', 'cancelled']);
/** Client error types no retry will fix. */
const PERMANENT = new Set([
  'access-denied',
  'invalid-argument',
  'unsupported',
  'stream-deleted',
  'stream-tombstoned',
]);

/** Whether a store-side failure is worth retrying (transient errors, and errors of unknown kind). */
export function isTransientStoreError(err: unknown): boolean {
  if (err instanceof TourniquetError) return err.retriable;
  const t = clientErrorType(err);
  return t === undefined || !PERMANENT.has(t);
}

/** Maps a client error to Tourniquet's typed errors; anything unrecognised is returned unchanged. */
export function mapClientError(
  err: unknown,
  ctx: { stream?: string; expected?: ExpectedRevision } = {},
): unknown {
  if (err instanceof TourniquetError) return err;
  const t = clientErrorType(err);
  if (t === 'wrong-expected-version') {
    const e = err as { streamName?: string; actualState?: unknown };
    return new WrongExpectedRevisionError(
      ctx.stream ?? e.streamName ?? '?',
      ctx.expected,
      actualStateToRevision(e.actualState),
    );
  }
  if (t !== undefined && TRANSIENT.has(t)) {
    return new TourniquetError(
      'STORE_UNAVAILABLE',
      `KurrentDB unavailable (${t}): ${(err as Error).message}`,
      {
        retriable: true,
        status: 503,
        cause: err,
      },
    );
  }
  return err;
}

/** Exponential backoff: initial, 2×, 4×, … capped at max (attempt counts from 1). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Positions this store has seen on real records: safe to hand to the server. Bounded; keeps the most
 * recent. `floor(n)` gives the greatest known position <= n, to start a scan as close as possible.
 */
export class KnownPositions {
  private readonly sorted: number[] = [];
  private readonly max: number;

  constructor(max = 4096) {
    this.max = max;
  }

  add(n: number): void {
    if (n <= 0) return;
    const a = this.sorted;
    if (a.length === 0 || n > a[a.length - 1]!) a.push(n);
    else {
      const i = this.lowerBound(n);
      if (a[i] === n) return;
      a.splice(i, 0, n);
    }
    if (a.length > this.max) a.splice(0, a.length - this.max);
  }

  has(n: number): boolean {
    return this.sorted[this.lowerBound(n)] === n;
  }

  /** Greatest known position <= n, or undefined. */
  floor(n: number): number | undefined {
    const a = this.sorted;
    const i = this.lowerBound(n);
    if (a[i] === n) return n;
    return i > 0 ? a[i - 1] : undefined;
  }

  get size(): number {
    return this.sorted.length;
  }

  private lowerBound(n: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

// ---------------------------------------------------------------------------------------------------
// The adapter

export const CHECKPOINT_EVENT_TYPE = '$tq-checkpoint';
/** The event type of a raw record in its content-addressed stream. */
const RAW_RECORD_EVENT_TYPE = '$tq-raw-record';
const rawRecordStream = (sha256: string) => `raw-record-${sha256}`;

export interface KurrentDbEventStoreOptions {
  /** Bytes per batch-append request (client default 3 MiB). */
  batchAppendSize?: number;
  /** Checkpoint streams are `<prefix><name>` (default 'checkpoint-'). */
  checkpointStreamPrefix?: string;
  /** `$maxCount` set on a new checkpoint stream (default 16); 0 leaves the stream unbounded. */
  checkpointMaxCount?: number;
  /** Reconnection of dropped subscriptions. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  log?: Logger;
  /** Whether close() disposes the client (default true for connect(), false for an injected client). */
  ownsClient?: boolean;
}

const CLIENT_PACKAGE = '@kurrent/kurrentdb-client';

const STOP: unique symbol = Symbol('stop');

export class KurrentDbEventStore implements EventStore {
  readonly name = 'kurrentdb';
  private readonly client: KurrentDbClientLike;
  private readonly log: Logger | undefined;
  private readonly batchAppendSize: number | undefined;
  private readonly checkpointPrefix: string;
  private readonly checkpointMaxCount: number;
  private readonly reconnect: { initialDelayMs: number; maxDelayMs: number; maxAttempts: number };
  private readonly ownsClient: boolean;
  private readonly known = new KnownPositions();
  private readonly active = new Set<Subscription>();
  private closed = false;

  constructor(client: KurrentDbClientLike, opts: KurrentDbEventStoreOptions = {}) {
    this.client = client;
    this.log = opts.log;
    this.batchAppendSize = opts.batchAppendSize;
    this.checkpointPrefix = opts.checkpointStreamPrefix ?? 'checkpoint-';
    this.checkpointMaxCount = opts.checkpointMaxCount ?? 16;
    this.reconnect = { initialDelayMs: 100, maxDelayMs: 5000, maxAttempts: 20, ...opts.reconnect };
    this.ownsClient = opts.ownsClient ?? false;
  }

  /**
   * Connects with a connection string, e.g. `kurrentdb://host:2113?tls=false` (development) or
   * `kurrentdb+discover://user:pass@cluster:2113` (a TLS cluster). Loads the client package lazily.
   */
  static async connect(
    opts: KurrentDbEventStoreOptions & { connectionString: string },
  ): Promise<KurrentDbEventStore> {
    let mod: { KurrentDBClient: { connectionString(s: string): KurrentDbClientLike } };
    try {
      mod = (await import(CLIENT_PACKAGE)) as typeof mod;
    } catch (err) {
      throw new TourniquetError(
        'CONFIG_INVALID',
        `the KurrentDB event store needs the ${CLIENT_PACKAGE} package (npm i -E ${CLIENT_PACKAGE}@1)`,
        { cause: err },
      );
    }
    const client = mod.KurrentDBClient.connectionString(opts.connectionString);
    return new KurrentDbEventStore(client, { ownsClient: true, ...opts });
  }

  // ------------------------------------------------------------------------------------------ writes

  async append(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.assertOpen();
    for (const e of events) assertStorable(e, stream);
    const streamState = toStreamState(expected);
    if (events.length === 0) return this.emptyAppend(stream, expected);
    const recorded = events.map(withRawApart);
    // Raw records first, each in its own content-addressed stream: an event never names a record that
    // is not there (a record whose event then fails to append is an unreferenced orphan, harmless).
    for (const { raw } of recorded) if (raw) await this.storeRawRecord(raw.ref.sha256, raw.text);
    let res: Awaited<ReturnType<KurrentDbClientLike['appendToStream']>>;
    try {
      res = await this.client.appendToStream(
        stream,
        events.map((e, i) => toEventData(e, recorded[i]!.data)),
        {
          streamState,
          ...(this.batchAppendSize ? { batchAppendSize: this.batchAppendSize } : {}),
        },
      );
    } catch (err) {
      throw mapClientError(err, { stream, expected });
    }
    if (!res.success) {
      // Only when the client was configured with throwOnAppendFailure=false.
      throw new WrongExpectedRevisionError(stream, expected, actualStateToRevision(res.nextExpectedRevision));
    }
    const nextRevision = revisionToNumber(res.nextExpectedRevision);
    // A single-event append reports that event's position. For several events, or an idempotent
    // retry (the server reports no position), read the last event back to get its exact position.
    let position = events.length === 1 && res.position ? positionToNumber(res.position) : undefined;
    if (position === undefined) position = await this.positionOfRevision(stream, nextRevision);
    this.known.add(position);
    return { nextRevision, position };
  }

  /**
   * A raw record in its content-addressed stream `raw-record-<sha256>` (a `$`-typed event, so it stays
   * out of readAll and subscriptions like checkpoints). The event id derives from the digest: appending
   * the same record again is recognised by KurrentDB's idempotency check.
   */
  private async storeRawRecord(sha256: string, text: string): Promise<void> {
    const stream = rawRecordStream(sha256);
    try {
      await this.client.appendToStream(
        stream,
        [
          {
            id: eventUuid(stream),
            contentType: 'application/json',
            type: RAW_RECORD_EVENT_TYPE,
            data: { body: text },
            metadata: {},
          },
        ],
        { streamState: 'any' },
      );
    } catch (err) {
      throw mapClientError(err, { stream });
    }
  }

  /** A raw record's JSON text by digest, checked against it (raw-records.ts). */
  async readRawRecord(sha256: string): Promise<string | undefined> {
    this.assertOpen();
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    const stream = rawRecordStream(sha256);
    try {
      for await (const r of this.client.readStream(stream, { fromRevision: 'start', maxCount: 1 })) {
        const body = (r.event?.data as { body?: unknown } | undefined)?.body;
        return assertRawRecord(sha256, typeof body === 'string' ? body : '');
      }
      return undefined;
    } catch (err) {
      if (clientErrorType(err) === 'stream-not-found') return undefined;
      throw mapClientError(err, { stream });
    }
  }

  /** Sequential appends, in order, stopping at the first failure (no multi-stream transaction). */
  async appendMany(
    batches: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>,
  ): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (const b of batches) results.push(await this.append(b.stream, b.events, b.expected));
    return results;
  }

  private async emptyAppend(stream: string, expected: ExpectedRevision): Promise<AppendResult> {
    const current = await this.streamRevision(stream);
    const fail =
      (expected === 'no_stream' && current !== 'no_stream') ||
      (expected === 'stream_exists' && current === 'no_stream') ||
      (typeof expected === 'number' && current !== expected);
    if (fail) throw new WrongExpectedRevisionError(stream, expected, current);
    return { nextRevision: current === 'no_stream' ? -1 : current, position: await this.headPosition() };
  }

  private async positionOfRevision(stream: string, revision: number): Promise<number> {
    try {
      for await (const r of this.client.readStream(stream, {
        fromRevision: BigInt(revision),
        maxCount: 1,
        direction: 'forwards',
      })) {
        const p = r.event ? recordPosition(r.event, r.commitPosition) : undefined;
        if (p !== undefined) return p;
      }
    } catch (err) {
      throw mapClientError(err, { stream });
    }
    throw new TourniquetError(
      'INTERNAL',
      `appended ${stream}@${revision} but could not read its position back`,
    );
  }

  // ------------------------------------------------------------------------------------------- reads

  async readStream(
    stream: string,
    opts: { fromRevision?: number; limit?: number } = {},
  ): Promise<RecordedEvent[]> {
    this.assertOpen();
    const from = opts.fromRevision ?? 0;
    if (!Number.isSafeInteger(from) || from < 0)
      throw invalid(`fromRevision must be an integer >= 0, got ${from}`);
    if (opts.limit !== undefined && opts.limit === 0) return [];
    const out: RecordedEvent[] = [];
    try {
      for await (const r of this.client.readStream(stream, {
        fromRevision: BigInt(from),
        direction: 'forwards',
        ...(opts.limit !== undefined && opts.limit > 0 ? { maxCount: opts.limit } : {}),
      })) {
        if (!r.event) continue;
        const e = fromRecordedEvent(r.event, r.commitPosition);
        this.known.add(e.position);
        out.push(e);
      }
    } catch (err) {
      if (clientErrorType(err) === 'stream-not-found') return [];
      throw mapClientError(err, { stream });
    }
    return out;
  }

  async streamRevision(stream: string): Promise<number | 'no_stream'> {
    this.assertOpen();
    try {
      for await (const r of this.client.readStream(stream, {
        fromRevision: 'end',
        direction: 'backwards',
        maxCount: 1,
      })) {
        if (r.event) return revisionToNumber(r.event.revision);
      }
      return 'no_stream';
    } catch (err) {
      if (clientErrorType(err) === 'stream-not-found') return 'no_stream';
      throw mapClientError(err, { stream });
    }
  }

  async readAll(opts: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = opts.after ?? 0;
    const limit = opts.limit !== undefined && opts.limit >= 0 ? opts.limit : undefined;
    if (limit === 0) return [];
    numberToPosition(after); // validates
    const filter = typeFilter(opts.types);
    const start = await this.startFor(after);
    const out: RecordedEvent[] = [];
    try {
      for await (const r of this.client.readAll({
        fromPosition: start.from,
        filter,
        resolveLinkTos: false,
        direction: 'forwards',
        // From an exact position the read is inclusive: the event at `after` may come first.
        ...(limit !== undefined && start.exact ? { maxCount: limit + 1 } : {}),
      })) {
        if (!r.event) continue;
        const p = recordPosition(r.event, r.commitPosition);
        if (p === undefined || p <= after) continue;
        const e = fromRecordedEvent(r.event, r.commitPosition);
        this.known.add(e.position);
        out.push(e);
        if (limit !== undefined && out.length >= limit) break;
      }
    } catch (err) {
      throw mapClientError(err);
    }
    return out;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.headFor(typeFilter());
  }

  /** Position of the newest event matching `filter`, 0 when there is none. */
  private async headFor(filter: KdbFilter): Promise<number> {
    try {
      for await (const r of this.client.readAll({
        fromPosition: 'end',
        direction: 'backwards',
        maxCount: 1,
        resolveLinkTos: false,
        filter,
      })) {
        const p = r.event ? recordPosition(r.event, r.commitPosition) : undefined;
        if (p !== undefined) {
          this.known.add(p);
          return p;
        }
      }
      return 0;
    } catch (err) {
      throw mapClientError(err);
    }
  }

  /**
   * Where to start reading for "events after `after`": exact (a real record's position) or a scan
   * from an earlier known position / the start (the caller skips events <= after either way).
   */
  private async startFor(after: number): Promise<{ from: KdbReadPosition; exact: boolean }> {
    if (after === 0 || this.known.has(after)) return { from: numberToPosition(after), exact: true };
    if (await this.isRecordPosition(after)) {
      this.known.add(after);
      return { from: numberToPosition(after), exact: true };
    }
    const floor = this.known.floor(after);
    this.log?.warn(
      { after, from: floor ?? 0 },
      'kurrentdb: position is not a record position; scanning forward',
    );
    return { from: floor !== undefined ? numberToPosition(floor) : 'start', exact: false };
  }

  /** True when a record (any event, system ones included) starts exactly at `n`. */
  private async isRecordPosition(n: number): Promise<boolean> {
    try {
      for await (const r of this.client.readAll({
        fromPosition: numberToPosition(n),
        maxCount: 1,
        direction: 'forwards',
        resolveLinkTos: false,
      })) {
        const e = r.event ?? r.link;
        return (
          e !== undefined &&
          e.position !== undefined &&
          e.position.commit === BigInt(n) &&
          e.position.prepare === BigInt(n)
        );
      }
      return false;
    } catch (err) {
      // Unreachable store: surface it. Any other failure (the server reports a read from the middle
      // of a record as an unknown error) means: not a record position.
      if (UNREACHABLE.has(clientErrorType(err) ?? '')) throw mapClientError(err);
      return false;
    }
  }

  // ---------------------------------------------------------------------------------- subscriptions

  subscribeAll(opts: SubscribeOptions, handler: EventHandler): Subscription {
    this.assertOpen();
    let position = opts.after ?? 0;
    numberToPosition(position); // validates
    const filter = typeFilter(opts.types);
    let stopped = false;
    let live = false;
    let current: KdbSubscription | undefined;
    let signalStop: () => void = () => undefined;
    const stopSignal = new Promise<typeof STOP>((resolve) => {
      signalStop = () => resolve(STOP);
    });
    const goLive = () => {
      if (live) return;
      live = true;
      opts.onLive?.();
    };
    class HandlerFailure {
      readonly cause: unknown;
      constructor(cause: unknown) {
        this.cause = cause;
      }
    }

    const loop = async (): Promise<void> => {
      let attempt = 0;
      let head: number | undefined;
      while (!stopped) {
        try {
          if (head === undefined) {
            head = await this.headFor(filter);
            if (head <= position) goLive();
          }
          const start = await this.startFor(position);
          if (stopped) return;
          const sub = this.client.subscribeToAll({ fromPosition: start.from, filter, resolveLinkTos: false });
          current = sub;
          const it = sub[Symbol.asyncIterator]();
          try {
            while (!stopped) {
              const next = await Promise.race([it.next(), stopSignal]);
              if (next === STOP || stopped) return;
              if (next.done) {
                throw new TourniquetError('STORE_UNAVAILABLE', 'KurrentDB ended the subscription', {
                  retriable: true,
                });
              }
              const r = next.value;
              if (!r.event) continue;
              const p = recordPosition(r.event, r.commitPosition);
              if (p === undefined || p <= position) continue; // at or before what was handled: never twice
              const event = fromRecordedEvent(r.event, r.commitPosition); // a decode error stops the subscription
              attempt = 0;
              try {
                await handler(event);
              } catch (err) {
                throw new HandlerFailure(err);
              }
              position = p;
              this.known.add(p);
              if (p >= head) goLive();
            }
          } finally {
            current = undefined;
            await sub.unsubscribe().catch(() => undefined);
            await it.return?.().catch(() => undefined);
          }
        } catch (err) {
          if (err instanceof HandlerFailure) throw err.cause;
          if (stopped) return;
          if (
            !isTransientStoreError(err) ||
            (err instanceof TourniquetError && err.code === 'DECODE_FAILED')
          ) {
            throw mapClientError(err);
          }
          attempt += 1;
          if (attempt > this.reconnect.maxAttempts) {
            throw new TourniquetError(
              'STORE_UNAVAILABLE',
              `KurrentDB subscription dropped and could not resume after ${this.reconnect.maxAttempts} attempts`,
              { retriable: true, status: 503, cause: err },
            );
          }
          const delay = backoffDelay(attempt, this.reconnect.initialDelayMs, this.reconnect.maxDelayMs);
          this.log?.warn({ err, attempt, delay, position }, 'kurrentdb subscription dropped; resuming');
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            stopSignal,
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, delay);
            }),
          ]);
          clearTimeout(timer);
        }
      }
    };

    const done = loop().catch((err: unknown) => {
      stopped = true;
      if (opts.onError) opts.onError(err);
      else throw err;
    });

    const subscription: Subscription = {
      get position() {
        return position;
      },
      stop: async () => {
        stopped = true;
        signalStop();
        await current?.unsubscribe().catch(() => undefined);
        await done.catch(() => undefined);
        this.active.delete(subscription);
      },
      done: done.then(() => undefined),
    };
    this.active.add(subscription);
    void done.finally(() => this.active.delete(subscription)).catch(() => undefined);
    return subscription;
  }

  // ------------------------------------------------------------------------------------ checkpoints

  private checkpointStream(name: string): string {
    return `${this.checkpointPrefix}${name}`;
  }

  async getCheckpoint(name: string): Promise<number | undefined> {
    this.assertOpen();
    const stream = this.checkpointStream(name);
    try {
      for await (const r of this.client.readStream(stream, {
        fromRevision: 'end',
        direction: 'backwards',
        maxCount: 1,
      })) {
        const data = r.event?.data as { position?: unknown } | undefined;
        // Not added to the known positions: a checkpoint is usually a handled event's position, but
        // the port allows any number, so a subscription from it is verified like any other.
        return data && typeof data.position === 'number' ? data.position : undefined;
      }
      return undefined;
    } catch (err) {
      if (clientErrorType(err) === 'stream-not-found') return undefined;
      throw mapClientError(err, { stream });
    }
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    this.assertOpen();
    const p = numberToPosition(position);
    const stream = this.checkpointStream(name);
    const commit = p === 'start' || p === 'end' ? '0' : p.commit.toString();
    const prepare = p === 'start' || p === 'end' ? '0' : p.prepare.toString();
    let res: Awaited<ReturnType<KurrentDbClientLike['appendToStream']>>;
    try {
      res = await this.client.appendToStream(
        stream,
        [
          {
            id: randomUUID(),
            contentType: 'application/json',
            type: CHECKPOINT_EVENT_TYPE,
            data: { position, commit, prepare, at: new Date().toISOString() },
            metadata: {},
          },
        ],
        { streamState: 'any' },
      );
    } catch (err) {
      throw mapClientError(err, { stream });
    }
    if (res.nextExpectedRevision === 0n && this.checkpointMaxCount > 0) {
      await this.client
        .setStreamMetadata(stream, { maxCount: this.checkpointMaxCount })
        .catch((err: unknown) => {
          this.log?.warn({ err, stream }, 'kurrentdb: could not set $maxCount on the checkpoint stream');
        });
    }
  }

  // ------------------------------------------------------------------------------------------ close

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.active].map((s) => s.stop()));
    if (this.ownsClient) await this.client.dispose();
  }

  private assertOpen(): void {
    if (this.closed)
      throw new TourniquetError('STORE_UNAVAILABLE', 'event store is closed', {
        retriable: false,
        status: 503,
      });
  }
}
