/**
 * Group commit for the SQLite event store: the appends of concurrent requests share one transaction
 * and one fsync instead of paying one each. An append waits in a queue until the next turn of the
 * event loop; everything queued by then (in practice: every request that arrived while the previous
 * commit held the event loop) is written in one IMMEDIATE transaction, each append in its own
 * savepoint. So
 * - an append resolves only once the commit that holds its rows returned (synchronous=FULL: on disk);
 * - each append is applied whole or not at all, and fails alone: an expected-revision mismatch, a
 *   duplicate conflict or any other error of one append rolls back its savepoint only, the others of
 *   the group are committed;
 * - a storage fault (disk full, I/O error, a failed commit) fails the whole group: nothing of it was
 *   written and every caller gets the fault;
 * - appends are written in the order they were queued, so the chain grows in that order.
 */
import type { NewEvent } from '../../schemas/events.ts';
import type { AppendResult, ExpectedRevision } from './port.ts';

export interface StreamBatch {
  stream: string;
  events: readonly NewEvent[];
  expected: ExpectedRevision;
}

/** One queued append's outcome inside a group: its results, or the error that rolled back its savepoint. */
export type GroupOutcome = { results: AppendResult[] } | { error: unknown };

/** Writes several appends in one transaction, one savepoint each; throws only when the whole group failed. */
export type CommitGroup = (appends: ReadonlyArray<readonly StreamBatch[]>) => GroupOutcome[];

interface Queued {
  batches: readonly StreamBatch[];
  resolve: (r: AppendResult[]) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Appends per group at most; a full group is written at once (default 1000). */
  maxGroup?: number;
}

export class GroupCommitQueue {
  private queue: Queued[] = [];
  private scheduled = false;
  private readonly maxGroup: number;
  private readonly commitGroup: CommitGroup;
  /** Groups written and appends in them, for the metrics and the bench. */
  readonly stats = { groups: 0, appends: 0 };

  constructor(commitGroup: CommitGroup, opts: GroupCommitOptions = {}) {
    this.commitGroup = commitGroup;
    this.maxGroup = Math.max(1, opts.maxGroup ?? 1000);
  }

  /** Queues one append (one request's batches, all or nothing); resolves once its group is committed. */
  enqueue(batches: readonly StreamBatch[]): Promise<AppendResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ batches, resolve, reject });
      if (this.queue.length >= this.maxGroup) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes everything queued now, in one transaction. */
  flush(): void {
    this.scheduled = false;
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) return;
    let outcomes: GroupOutcome[];
    try {
      outcomes = this.commitGroup(group.map((q) => q.batches));
    } catch (err) {
      for (const q of group) q.reject(err);
      return;
    }
    this.stats.groups += 1;
    this.stats.appends += group.length;
    for (const [i, q] of group.entries()) {
      const outcome = outcomes[i]!;
      if ('results' in outcome) q.resolve(outcome.results);
      else q.reject(outcome.error);
    }
  }
}
