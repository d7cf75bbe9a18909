import { identityKey } from '../../../schemas/detection.ts';
import type { NewEvent } from '../../../schemas/events.ts';
import { parseTime } from './time.ts';
import type { ActiveStorm, StormView } from './types.ts';

interface Firing {
  atMs: number;
  identity: string;
}

/**
 * Which identities each rule proposed actions for, and which rules a storm holds. Like the budget
 * ledger it spans identities and is folded from the decider's own events in decision order
 * (ActionProposed, StormDetected, StormResolved), so replay holds exactly what live held.
 */
export class StormLedger implements StormView {
  private readonly firings = new Map<string, Firing[]>();
  private readonly storms = new Map<string, ActiveStorm>();
  private readonly resolved = new Map<string, number>();
  private readonly retainMs: number;

  /** `retainMs`: how far back firings are kept (the longest baseline period a policy may use). */
  constructor(retainMs = 8 * 86400_000) {
    this.retainMs = retainMs;
  }

  active(ruleId: string): ActiveStorm | undefined {
    return this.storms.get(ruleId);
  }

  resolvedAtMs(ruleId: string): number {
    return this.resolved.get(ruleId) ?? Number.NEGATIVE_INFINITY;
  }

  distinctIdentities(ruleId: string, fromMs: number, toMs: number): Set<string> {
    const out = new Set<string>();
    const list = this.firings.get(ruleId);
    if (!list) return out;
    for (let i = firstAfter(list, fromMs); i < list.length && list[i]!.atMs <= toMs; i++) {
      out.add(list[i]!.identity);
    }
    return out;
  }

  proposals(ruleId: string, fromMs: number, toMs: number): number {
    const list = this.firings.get(ruleId);
    if (!list) return 0;
    return firstAfter(list, toMs) - firstAfter(list, fromMs);
  }

  record(event: NewEvent): void {
    switch (event.type) {
      case 'ActionProposed': {
        if (event.data.ruleId === 'manual') return;
        this.addFiring(event.data.ruleId, parseTime(event.occurredAt), identityKey(event.data.identity));
        return;
      }
      case 'StormDetected':
        this.storms.set(event.data.ruleId, {
          stormId: event.data.stormId,
          ruleId: event.data.ruleId,
          threshold: event.data.threshold,
          raisedAtMs: parseTime(event.occurredAt),
        });
        return;
      case 'StormResolved':
        if (this.storms.get(event.data.ruleId)?.stormId === event.data.stormId) {
          this.storms.delete(event.data.ruleId);
          this.resolved.set(event.data.ruleId, parseTime(event.occurredAt));
        }
        return;
      default:
        return;
    }
  }

  private addFiring(ruleId: string, atMs: number, identity: string): void {
    let list = this.firings.get(ruleId);
    if (!list) {
      list = [];
      this.firings.set(ruleId, list);
    }
    // Decisions across identities arrive nearly in time order: insert from the end.
    let i = list.length;
    while (i > 0 && list[i - 1]!.atMs > atMs) i--;
    list.splice(i, 0, { atMs, identity });
    if (list[0]!.atMs < atMs - this.retainMs) {
      const keep = firstAfter(list, atMs - this.retainMs - 1);
      list.splice(0, keep);
    }
  }
}

/** Index of the first firing strictly after `t` in a time-sorted list. */
function firstAfter(list: readonly Firing[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.atMs > t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
