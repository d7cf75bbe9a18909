/**
 * An EventStore decorator that groups concurrent appends into one `appendMany`. On SQLite that is one
 * IMMEDIATE transaction and one fsync for the whole group instead of one per append: the decider
 * appends once per decision and decides many identities concurrently, so under load hundreds of
 * fsyncs become one. Everything but `append` is passed through unchanged.
 *
 * Semantics do not change. If the combined transaction fails (typically one stream's expected revision
 * no longer holds), it rolled back as a whole and every append of the group is retried alone, so each
 * caller gets exactly the result or the error its own append would have had: a conflicting append fails
 * alone and never takes the others down with it.
 *
 * Only worth it where `appendMany` is one transaction (SQLite). KurrentDB's appendMany is a sequence of
 * appends that stops at the first failure (earlier batches stay written): the retry-alone step is still
 * correct there (appends are idempotent by event id), but there is nothing to gain, so
 * platform/eventstore/open.ts only wraps SQLite.
 */
import type { NewEvent, RecordedEvent } from '../../schemas/events.ts';
import type { StoreHealth } from './health.ts';
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

interface PendingAppend {
  stream: string;
  events: readonly NewEvent[];
  expected: ExpectedRevision;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export interface CoalescingOptions {
  /** Appends per group at most; a full group is flushed at once (default 2000). */
  maxBatch?: number;
}

export class CoalescingEventStore implements EventStore {
  readonly name: string;
  readonly inner: EventStore;
  private queue: PendingAppend[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly maxBatch: number;
  /** Groups written as one appendMany, and groups that failed and were retried append by append. */
  readonly stats = { groups: 0, coalesced: 0, fallbacks: 0 };

  /** The inner store's tamper check, when it has one. */
  readonly verifyChain?: (opts?: { anchors?: readonly ChainAnchor[] }) => Promise<ChainVerdict>;

  constructor(inner: EventStore, opts: CoalescingOptions = {}) {
    this.inner = inner;
    this.name = inner.name;
    if (inner.verifyChain) this.verifyChain = (opts) => inner.verifyChain!(opts);
    this.maxBatch = Math.max(1, opts.maxBatch ?? 2000);
  }

  /** Queued for the next turn of the event loop, where it is written with every other append queued by then. */
  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ stream, events, expected, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        void this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.inFlight += 1;
    try {
      if (batch.length > 1) {
        let results: AppendResult[] | undefined;
        try {
          results = await this.inner.appendMany(
            batch.map((p) => ({ stream: p.stream, events: p.events, expected: p.expected })),
          );
        } catch {
          results = undefined; // rolled back as a whole: each append again, alone
        }
        if (results && results.length === batch.length) {
          this.stats.groups += 1;
          this.stats.coalesced += batch.length;
          for (const [i, p] of batch.entries()) p.resolve(results[i]!);
          return;
        }
        this.stats.fallbacks += 1;
      }
      for (const p of batch) {
        try {
          p.resolve(await this.inner.append(p.stream, p.events, p.expected));
        } catch (e) {
          p.reject(e);
        }
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  appendMany(
    batches: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>,
  ): Promise<AppendResult[]> {
    return this.inner.appendMany(batches);
  }
  readStream(stream: string, opts?: { fromRevision?: number; limit?: number }): Promise<RecordedEvent[]> {
    return this.inner.readStream(stream, opts);
  }
  streamRevision(stream: string): Promise<number | 'no_stream'> {
    return this.inner.streamRevision(stream);
  }
  readAll(opts?: ReadAllOptions): Promise<RecordedEvent[]> {
    return this.inner.readAll(opts);
  }
  headPosition(): Promise<number> {
    return this.inner.headPosition();
  }
  subscribeAll(opts: SubscribeOptions, handler: EventHandler): Subscription {
    return this.inner.subscribeAll(opts, handler);
  }
  readRawRecord(sha256: string): Promise<string | undefined> {
    return this.inner.readRawRecord ? this.inner.readRawRecord(sha256) : Promise.resolve(undefined);
  }

  findDetection(source: string, id: string): Promise<RecordedEvent<'DetectionReceived'> | undefined> {
    return this.inner.findDetection ? this.inner.findDetection(source, id) : Promise.resolve(undefined);
  }
  health(): StoreHealth {
    return this.inner.health?.() ?? { writable: true, faults: {} };
  }
  probeWrite(): Promise<boolean> {
    return this.inner.probeWrite?.() ?? Promise.resolve(true);
  }
  getCheckpoint(name: string): Promise<number | undefined> {
    return this.inner.getCheckpoint(name);
  }
  saveCheckpoint(name: string, position: number): Promise<void> {
    return this.inner.saveCheckpoint(name, position);
  }
  /** Waits for queued and in-flight appends to settle, then closes the inner store. */
  async close(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled || this.inFlight > 0)
      await new Promise((r) => setImmediate(r));
    await this.inner.close();
  }
}
