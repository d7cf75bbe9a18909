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
  /** The storm each rule's last StormResolved ended, and the resolution before it: to take it back. */
  private readonly ended = new Map<string, { storm: ActiveStorm; resolvedBefore: number | undefined }>();
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

  busiestWindow(
    ruleId: string,
    atMs: number,
    windowMs: number,
    notBeforeMs: number,
    self: string,
  ): Set<string> {
    const list = this.firings.get(ruleId) ?? [];
    // Firings that can share a window with `atMs`, this decision's identity among them, in time order.
    const from = Math.max(atMs - windowMs, notBeforeMs);
    const lo = firstAfter(list, from);
    const hi = firstAtOrAfter(list, atMs + windowMs, lo);
    const after = firstAfter(list, atMs);
    if (after >= hi) {
      // Nothing later than this decision (the usual case: decisions arrive in time order). Every
      // window holding `atMs` then ends after it, so the one starting at the earliest firing holds
      // all the others: its identities are the answer, without sliding.
      const best = new Set<string>();
      for (let i = lo; i < hi; i++) best.add(list[i]!.identity);
      best.add(self);
      return best;
    }
    const near: Firing[] = list.slice(lo, Math.max(lo, after));
    near.push({ atMs, identity: self });
    for (let i = Math.max(lo, after); i < hi; i++) near.push(list[i]!);
    // Every window [start, start + windowMs) containing atMs starts at a firing no later than atMs;
    // slide it over `near`, keeping a count per identity, and remember the fullest.
    const counts = new Map<string, number>();
    let bestSize = 0;
    let bestStart = 0;
    let bestEnd = 0;
    let end = 0;
    for (let i = 0; i < near.length && near[i]!.atMs <= atMs; i++) {
      const limit = near[i]!.atMs + windowMs;
      while (end < near.length && near[end]!.atMs < limit) {
        const id = near[end++]!.identity;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      if (counts.size > bestSize) {
        bestSize = counts.size;
        bestStart = i;
        bestEnd = end;
      }
      const id = near[i]!.identity;
      const c = counts.get(id)! - 1;
      if (c === 0) counts.delete(id);
      else counts.set(id, c);
    }
    const best = new Set<string>();
    for (let i = bestStart; i < bestEnd; i++) best.add(near[i]!.identity);
    return best;
  }

  /**
   * `busiestWindow(…).size`, counted only up to `stopAt` (the answer is min(size, stopAt)). A guard
   * comparing the count with a threshold needs no more, and under a storm the window holds thousands of
   * firings: in the usual time-ordered case this stops after `stopAt` distinct identities.
   */
  busiestCount(
    ruleId: string,
    atMs: number,
    windowMs: number,
    notBeforeMs: number,
    self: string,
    stopAt: number,
  ): number {
    const list = this.firings.get(ruleId) ?? [];
    const lo = firstAfter(list, Math.max(atMs - windowMs, notBeforeMs));
    const hi = firstAtOrAfter(list, atMs + windowMs, lo);
    const after = Math.max(lo, firstAfter(list, atMs));
    if (after >= hi) {
      // time-ordered: the answer is the distinct identities of list[lo, hi) and self (see busiestWindow)
      const seen = new Set<string>([self]);
      for (let i = lo; i < hi && seen.size < stopAt; i++) seen.add(list[i]!.identity);
      return Math.min(stopAt, seen.size);
    }
    // busiestWindow's slide over the same sequence (self placed at atMs among the firings), read in
    // place instead of copied, stopping as soon as one window holds stopAt identities
    const selfAt = after - lo;
    const length = hi - lo + 1;
    const timeAt = (k: number) =>
      k < selfAt ? list[lo + k]!.atMs : k === selfAt ? atMs : list[lo + k - 1]!.atMs;
    const idAt = (k: number) =>
      k < selfAt ? list[lo + k]!.identity : k === selfAt ? self : list[lo + k - 1]!.identity;
    const counts = new Map<string, number>();
    let best = 0;
    let end = 0;
    for (let i = 0; i < length && timeAt(i) <= atMs; i++) {
      const limit = timeAt(i) + windowMs;
      while (end < length && timeAt(end) < limit) {
        const id = idAt(end++);
        counts.set(id, (counts.get(id) ?? 0) + 1);
        if (counts.size >= stopAt) return stopAt;
      }
      if (counts.size > best) best = counts.size;
      const id = idAt(i);
      const c = counts.get(id)! - 1;
      if (c === 0) counts.delete(id);
      else counts.set(id, c);
    }
    return Math.min(stopAt, best);
  }

  /**
   * How many of the rule's firings could share a window with `atMs`: one more than this bounds the
   * distinct identities busiestWindow can find, so a caller may skip it when the bound is too small.
   */
  firingsNear(ruleId: string, atMs: number, windowMs: number, notBeforeMs: number): number {
    const list = this.firings.get(ruleId);
    if (!list) return 0;
    const lo = firstAfter(list, Math.max(atMs - windowMs, notBeforeMs));
    return firstAtOrAfter(list, atMs + windowMs, lo) - lo;
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
        {
          const storm = this.storms.get(event.data.ruleId);
          if (storm?.stormId !== event.data.stormId) return;
          this.ended.set(event.data.ruleId, { storm, resolvedBefore: this.resolved.get(event.data.ruleId) });
          this.storms.delete(event.data.ruleId);
          this.resolved.set(event.data.ruleId, parseTime(event.occurredAt));
        }
        return;
      default:
        return;
    }
  }

  /**
   * Takes back an event recorded but never appended (its append failed, or its request failed as a
   * whole), newest first: the firing goes, a storm it raised ends, a storm it resolved holds again.
   */
  unrecord(event: NewEvent): void {
    switch (event.type) {
      case 'ActionProposed': {
        const list = this.firings.get(event.data.ruleId);
        if (!list) return;
        const atMs = parseTime(event.occurredAt);
        const identity = identityKey(event.data.identity);
        for (let i = list.length - 1; i >= 0; i--) {
          if (list[i]!.atMs === atMs && list[i]!.identity === identity) {
            list.splice(i, 1);
            return;
          }
        }
        return;
      }
      case 'StormDetected':
        if (this.storms.get(event.data.ruleId)?.stormId === event.data.stormId)
          this.storms.delete(event.data.ruleId);
        return;
      case 'StormResolved': {
        const ended = this.ended.get(event.data.ruleId);
        if (ended?.storm.stormId !== event.data.stormId) return;
        this.storms.set(event.data.ruleId, ended.storm);
        if (ended.resolvedBefore === undefined) this.resolved.delete(event.data.ruleId);
        else this.resolved.set(event.data.ruleId, ended.resolvedBefore);
        this.ended.delete(event.data.ruleId);
        return;
      }
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

/** Index of the first firing at or after `t` in a time-sorted list, searching from `lo`. */
function firstAtOrAfter(list: readonly Firing[], t: number, lo: number): number {
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.atMs >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
