import type { NewEvent } from '../../../schemas/events.ts';
import { parseTime } from './time.ts';
import type { BudgetView } from './types.ts';

/**
 * Counts automatic actions per budget key over sliding windows. It lives outside the per-identity
 * state because budgets span identities; the decider loop folds every decision into it in the
 * same order the decisions were made, so replay reproduces it exactly.
 */
export class BudgetLedger implements BudgetView {
  private readonly stamps = new Map<string, number[]>();
  private readonly trippedKeys = new Set<string>();
  private readonly retainMs: number;

  constructor(retainMs = 7 * 86400_000) {
    this.retainMs = retainMs;
  }

  /**
   * The fullest window of `windowMs` that an action at `atMs` would fall into. Decisions are not
   * always made in time order across identities (partitions lag differently), so besides the window
   * ending at `atMs` every window ending at a later recorded action, up to `atMs + windowMs`, counts:
   * if `used < limit`, adding this action leaves every window within its limit.
   */
  used(key: string, atMs: number, windowMs: number): number {
    const list = this.stamps.get(key);
    if (!list || list.length === 0) return 0;
    let left = firstAfter(list, atMs - windowMs);
    let right = firstAfter(list, atMs);
    let most = right - left;
    const end = atMs + windowMs;
    while (right < list.length && list[right]! < end) {
      const s = list[right]!;
      while (right + 1 < list.length && list[right + 1] === s) right++;
      while (list[left]! <= s - windowMs) left++;
      most = Math.max(most, right + 1 - left);
      right++;
    }
    return most;
  }

  tripped(key: string): boolean {
    return this.trippedKeys.has(key);
  }

  /** Folds decider events into the ledger: automatic proposals count, GuardTripped marks the key. */
  record(event: NewEvent): void {
    if (event.type === 'ActionProposed' && event.data.approval.mode === 'auto') {
      const atMs = parseTime(event.occurredAt);
      for (const key of event.data.blastRadius.budgetKeys) {
        let list = this.stamps.get(key);
        if (!list) {
          list = [];
          this.stamps.set(key, list);
        }
        list.push(atMs);
        if (list.length > 1 && list[list.length - 2]! > atMs) list.sort((a, b) => a - b);
        if (list[0]! < atMs - this.retainMs) {
          const keep = list.filter((t) => t >= atMs - this.retainMs);
          this.stamps.set(key, keep);
        }
        // Budget was available again for this key: a later exhaustion raises a new GuardTripped.
        this.trippedKeys.delete(key);
      }
    } else if (event.type === 'GuardTripped') {
      this.trippedKeys.add(event.data.scope);
    }
  }

  /**
   * Takes back an event recorded but never appended (its request failed as a whole): the automatic
   * proposal's stamps go; a tripped guard is cleared (at worst a later exhaustion raises it again).
   */
  unrecord(event: NewEvent): void {
    if (event.type === 'ActionProposed' && event.data.approval.mode === 'auto') {
      const atMs = parseTime(event.occurredAt);
      for (const key of event.data.blastRadius.budgetKeys) {
        const list = this.stamps.get(key);
        const i = list ? list.lastIndexOf(atMs) : -1;
        if (list && i >= 0) list.splice(i, 1);
      }
    } else if (event.type === 'GuardTripped') {
      this.trippedKeys.delete(event.data.scope);
    }
  }
}

/** Index of the first stamp strictly greater than `t` in a sorted list (list.length if none). */
function firstAfter(list: readonly number[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! > t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
