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
 */
export class AppendUnit {
  private staged: Staged[] = [];
  private undos: Array<() => void> = [];
  private readonly detections = new Map<string, NormalizedDetection>();
  private done = false;

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

  /** Writes everything staged in one appendMany; on failure undoes it all and rethrows. */
  async commit(store: EventStore): Promise<AppendResult[]> {
    if (this.done) throw new Error('append unit already committed or aborted');
    if (this.staged.length === 0) {
      this.done = true;
      return [];
    }
    try {
      const results = await store.appendMany(this.staged);
      this.done = true;
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
  }
}
