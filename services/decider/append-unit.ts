import { WrongExpectedRevisionError } from '../../platform/errors.ts';
import type { AppendResult, EventStore, ExpectedRevision } from '../../platform/eventstore/port.ts';
import type { NormalizedDetection } from '../../schemas/detection.ts';
import type { NewEvent } from '../../schemas/events.ts';

interface Staged {
  stream: string;
  events: readonly NewEvent[];
  expected: ExpectedRevision;
}

/**
 * One request's decisions, appended in one transaction: the engine stages each decision (and folds
 * it into its cached state and budget ledger, as if appended), then the whole is written with one
 * `appendMany` — on SQLite one transaction, all or nothing. If anything fails, every staged decision
 * is undone in the engine (cached states dropped and reloaded from the store, budget entries
 * removed), so the store and the decider are as before the request.
 *
 * Units of concurrent requests may overlap (group commit: a request is decided while the one before
 * it waits for its commit). A decision that found nothing to write because another unit staged the
 * same detection relies on that unit: it waits for that unit's outcome before its own commit, and is
 * decided again if that unit was not written.
 */
export class AppendUnit {
  private staged: Staged[] = [];
  private undos: Array<() => void> = [];
  private readonly detections = new Map<string, NormalizedDetection>();
  private readonly reliesOn = new Set<AppendUnit>();
  private done = false;
  private settle: (written: boolean) => void = () => undefined;
  /** Resolves once the unit's fate is known: true when written, false when aborted or failed. */
  readonly settled = new Promise<boolean>((resolve) => {
    this.settle = resolve;
  });

  /** Stages one decision; `undo` reverts what the engine folded in for it. */
  stage(batch: Staged, undo: () => void): void {
    if (this.done) throw new Error('append unit already committed or aborted');
    this.staged.push(batch);
    this.undos.push(undo);
    for (const e of batch.events) {
      if (e.type === 'DetectionReceived') {
        const d = e.data.detection;
        this.detections.set(`${d.source}\u0000${d.id}`, d);
      }
    }
  }

  /** A detection staged in this unit under `source` + `id`, if any. */
  stagedDetection(source: string, id: string): NormalizedDetection | undefined {
    return this.detections.get(`${source}\u0000${id}`);
  }

  get size(): number {
    return this.staged.length;
  }

  /** A decision of this unit counted on what `other` staged (see the class comment). */
  relyOn(other: AppendUnit): void {
    if (other !== this && !other.done) this.reliesOn.add(other);
  }

  /** Writes everything staged in one appendMany; on failure undoes it all and rethrows. */
  async commit(store: EventStore): Promise<AppendResult[]> {
    if (this.done) throw new Error('append unit already committed or aborted');
    for (const other of this.reliesOn) {
      if (await other.settled) continue;
      // What this unit counted as already there was never written: decide it again.
      const stream = this.staged[0]?.stream ?? '(a detection staged by a concurrent request)';
      this.abort();
      throw new WrongExpectedRevisionError(stream, 'a concurrent request written', 'no_stream');
    }
    if (this.staged.length === 0) {
      this.done = true;
      this.settle(true);
      return [];
    }
    try {
      const results = await store.appendMany(this.staged);
      this.done = true;
      this.settle(true);
      return results;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Undoes every staged decision in the engine (newest first); nothing was written. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    for (const undo of this.undos.reverse()) undo();
    this.undos = [];
    this.staged = [];
    this.settle(false);
  }
}
