import type { Logger } from 'pino';
import { DuplicateConflictError, WrongExpectedRevisionError } from '../../platform/errors.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { sameDetectionContent } from '../../platform/eventstore/raw-records.ts';
import type { ProviderCapabilities } from '../../schemas/capabilities.ts';
import { type IdentityRef, identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import {
  CATALOGUE_STREAM,
  CONTROL_STREAM,
  type EventDataOf,
  identityStream,
  type NewEvent,
  type RecordedEvent,
} from '../../schemas/events.ts';
import type { AppendUnit } from './append-unit.ts';
import { CatalogueIndex } from './core/catalogue.ts';
import { type CompiledPolicy, compilePolicy } from './core/compiled-policy.ts';
import { type DeciderContext, decide, nextDeadline } from './core/decide.ts';
import { evolve, initialState } from './core/evolve.ts';
import { DecisionLedger } from './core/ledger.ts';
import { resolveIdentity } from './core/resolve.ts';
import { ALREADY_RECORDED, applyDecision, recordDecision } from './core/step.ts';
import type { DeciderInput, IdentityState } from './core/types.ts';
import type { LoadedPolicy } from './policy/load.ts';

/** Default bound of the identity cache (docs/configuration.md gives its memory cost). */
const DEFAULT_MAX_CACHED_IDENTITIES = 200_000;

interface Cached {
  state: IdentityState;
  revision: number | 'no_stream';
  /** The pending-approval deadline last recorded in `deadlines` for this identity, or null. */
  deadline: number | null;
  /** Read since the eviction sweep last passed it: it gets a second chance (see `evictOne`). */
  used: boolean;
}

export interface DecisionResult {
  input: DeciderInput;
  events: NewEvent[];
}

/**
 * The decider's I/O shell around the pure core: loads an identity's state from its stream,
 * decides, appends with the expected revision (one writer per identity; a conflict re-reads and
 * decides again), folds the result back, and keeps the cross-identity budget ledger and the kill
 * switch. Callers serialise inputs per identity (the RxJS pipeline does).
 */
export class DeciderEngine {
  private readonly store: EventStore;
  private readonly cache = new Map<string, Cached>();
  private readonly deadlines = new Map<string, { at: number; identity: IdentityRef }>();
  private readonly log: Logger | undefined;
  /** Budgets (and whatever else spans identities), folded from every decision. */
  readonly ledger = new DecisionLedger();
  readonly catalogue: CatalogueIndex;
  private compiled: CompiledPolicy;
  private paused = false;
  private readonly capabilities: ProviderCapabilities | undefined;

  /** Identity states kept in memory; beyond this the least recently used (nearly) are dropped and re-read on demand. */
  private readonly maxCached: number;
  /** Detections staged by units not yet written (source NUL id), for requests decided meanwhile. */
  private readonly staging = new Map<string, { detection: NormalizedDetection; unit: AppendUnit }>();

  constructor(opts: {
    store: EventStore;
    policy: LoadedPolicy;
    catalogue?: CatalogueIndex;
    log?: Logger;
    maxCachedIdentities?: number;
    /** What the configured providers can undo (shown on proposals; gates irreversible automation). */
    capabilities?: ProviderCapabilities | undefined;
  }) {
    this.capabilities = opts.capabilities;
    this.store = opts.store;
    this.maxCached = opts.maxCachedIdentities ?? DEFAULT_MAX_CACHED_IDENTITIES;
    this.compiled = compilePolicy(opts.policy.policy, opts.policy.digest);
    this.catalogue = opts.catalogue ?? new CatalogueIndex();
    this.log = opts.log;
  }

  /** How many identity states are in memory (bounded by maxCachedIdentities). */
  get cachedIdentities(): number {
    return this.cache.size;
  }

  get policy(): CompiledPolicy {
    return this.compiled;
  }

  get automationPaused(): boolean {
    return this.paused;
  }

  setPolicy(policy: LoadedPolicy): void {
    this.compiled = compilePolicy(policy.policy, policy.digest);
    // Cached states forgot evidence the old policy could not count (windows, confidence floors);
    // the new one may count it, so states are rebuilt from their streams under the new policy.
    this.cache.clear();
  }

  /** Restores what spans identities from the store: kill switch, catalogue, budget ledger. */
  async start(): Promise<void> {
    for (const e of await this.store.readStream(CONTROL_STREAM)) this.applyControl(e);
    for (const e of await this.store.readStream(CATALOGUE_STREAM)) this.applyControl(e);
    // One pass over decisions: budget usage, and which identities still wait on an approval.
    const pending = new Map<string, IdentityRef>();
    let after = 0;
    for (;;) {
      const page = await this.store.readAll({
        after,
        limit: 5000,
        types: [
          'ActionProposed',
          'GuardTripped',
          'StormDetected',
          'StormResolved',
          'ActionApproved',
          'ActionRejected',
          'ActionExpired',
        ],
      });
      for (const e of page) {
        this.ledger.record(e);
        if (e.type === 'ActionProposed') pending.set(e.data.actionId, e.data.identity);
        else if (e.type === 'ActionRejected' || e.type === 'ActionExpired') pending.delete(e.data.actionId);
        else if (e.type === 'ActionApproved' && e.data.final) pending.delete(e.data.actionId);
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.position;
    }
    const identities = new Map<string, IdentityRef>();
    for (const identity of pending.values()) identities.set(identityKey(identity), identity);
    await this.restoreDeadlines(identities.values());
  }

  /** Control-plane events (pause/resume, catalogue changes, storms resolved) seen by a live subscription. */
  applyControl(e: RecordedEvent | NewEvent): void {
    if (e.type === 'AutomationPaused') this.paused = true;
    else if (e.type === 'AutomationResumed') this.paused = false;
    else if (e.type === 'IdentityCatalogued') this.catalogue.add(e.data.entry);
    // An analyst ending a storm's hold (the API appends it to the control stream).
    else if (e.type === 'StormResolved') this.ledger.record(e);
  }

  private context(): DeciderContext {
    return {
      ...this.ledger.context(this.compiled, this.catalogue, this.paused),
      ...(this.capabilities ? { capabilities: this.capabilities } : {}),
    };
  }

  /**
   * A cached state, marked as read: eviction passes over it once (see `evictOne`), so an identity
   * under an alert storm stays in memory while a quiet one is reloaded when it speaks. Marking costs
   * nothing per decision, where moving the entry to the young end of the map cost a delete and an
   * insert in a map of up to maxCached identities.
   */
  private touch(key: string): Cached | undefined {
    const hit = this.cache.get(key);
    if (hit) hit.used = true;
    return hit;
  }

  /**
   * Drops one state other than `keep`, nearly the least recently used (second chance): from the
   * oldest entry on, one read since the sweep last passed it is moved to the young end unmarked, the
   * first one not read is dropped. Each read is passed over at most once, so this is O(1) amortised.
   */
  private evictOne(keep: string): void {
    for (const [key, cached] of this.cache) {
      if (key === keep) continue;
      if (cached.used) {
        cached.used = false;
        this.cache.delete(key);
        this.cache.set(key, cached);
        continue;
      }
      this.cache.delete(key);
      return;
    }
  }

  private async load(identity: IdentityRef, key = identityKey(identity)): Promise<Cached> {
    const hit = this.touch(key);
    if (hit) return hit;
    const events = await this.store.readStream(identityStream(identity));
    const state = initialState(identity);
    for (const e of events) evolve(state, e, this.compiled.maxWindowMs, this.compiled.evidenceFloor);
    const loaded: Cached = {
      state,
      revision: events.length === 0 ? 'no_stream' : events[events.length - 1]!.revision,
      deadline: this.deadlines.get(key)?.at ?? null,
      used: false,
    };
    this.cache.set(key, loaded);
    // Memory follows the active set: a state not read lately goes (its stream is the truth; a later
    // input reloads it). An in-flight decision holding it only updates an object nobody reads again.
    // engine-bound.property.unit.test.ts checks that a bound never changes a decision.
    if (this.cache.size > this.maxCached) this.evictOne(key);
    return loaded;
  }

  /**
   * Decides one input and appends the result durably (`key`: its identityKey, when the caller has it). Throws typed errors for invalid commands
   * (nothing appended) and store errors (the cached state is dropped and reloaded next time).
   */
  async handle(received: DeciderInput, key?: string, unit?: AppendUnit): Promise<DecisionResult> {
    // An alias from the catalogue is decided as its canonical identity (another stream, another key).
    const input = resolveIdentity(received, this.catalogue);
    if (input !== received) key = undefined;
    const identity = input.type === 'detection' ? input.detection.identity : input.identity;
    key ??= identityKey(identity);
    if (unit) return this.stage(input, identity, key, unit);
    for (let attempt = 1; ; attempt++) {
      const cached = this.touch(key) ?? (await this.load(identity, key));
      const events = decide(cached.state, input, this.context());
      if (events.length === 0) {
        if (input.type === 'detection') await this.assertSameContent(input.detection, cached.state.stream);
        return { input, events };
      }
      // Into the ledger before the append, not after: decisions of other identities made while this
      // one is being written must see its budget stamps and storm firings, or a burst decided side by
      // side would spend one budget many times. Taken back if the append fails.
      recordDecision(this.ledger, events);
      try {
        const result = await this.store.append(
          cached.state.stream || identityStream(identity),
          events,
          cached.revision,
        );
        if (
          result.nextRevision ===
          (cached.revision === 'no_stream' ? -1 : cached.revision) + events.length
        ) {
          const deadline = applyDecision(cached.state, events, ALREADY_RECORDED, this.compiled);
          cached.revision = result.nextRevision;
          this.trackDeadline(key, cached, deadline);
        } else {
          // The store answered from an identical batch it already holds (an idempotent retry of an
          // append that did land, or another writer): the stream is not "cache + this batch". Re-read.
          this.cache.delete(key);
          this.trackDeadline(key, await this.load(identity, key));
        }
        return { input, events };
      } catch (err) {
        for (let i = events.length - 1; i >= 0; i--) this.ledger.unrecord(events[i]!);
        this.cache.delete(key);
        if (err instanceof WrongExpectedRevisionError && attempt < 5) {
          this.log?.debug(
            { identity: key, attempt },
            'identity stream moved on; re-reading and deciding again',
          );
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Decides one input of a request appended as a whole (AppendUnit): the decision is folded into the
   * cached state and the budget now, so the request's next inputs see it, and staged; the unit
   * writes every staged decision in one transaction, or undoes them all here.
   */
  private async stage(
    input: DeciderInput,
    identity: IdentityRef,
    key: string,
    unit: AppendUnit,
  ): Promise<DecisionResult> {
    const cached = this.touch(key) ?? (await this.load(identity, key));
    const events = decide(cached.state, input, this.context());
    if (events.length === 0) {
      if (input.type === 'detection')
        await this.assertSameContent(input.detection, cached.state.stream, unit);
      return { input, events };
    }
    const expected = cached.revision;
    const stream = cached.state.stream || identityStream(identity);
    const deadline = applyDecision(cached.state, events, this.ledger, this.compiled);
    cached.revision = (expected === 'no_stream' ? -1 : expected) + events.length;
    this.trackDeadline(key, cached, deadline);
    unit.stage({ stream, events, expected }, () => {
      // The state folded what never reached the store: it is re-read on the next input.
      if (this.cache.get(key) === cached) this.cache.delete(key);
      for (let i = events.length - 1; i >= 0; i--) this.ledger.unrecord(events[i]!);
    });
    for (const e of events) if (e.type === 'DetectionReceived') this.trackStaged(e.data.detection, unit);
    return { input, events };
  }

  /** Remembers a staged detection until its unit is written or dropped (see `staging`). */
  private trackStaged(d: NormalizedDetection, unit: AppendUnit): void {
    const k = `${d.source}\u0000${d.id}`;
    this.staging.set(k, { detection: d, unit });
    void unit.settled.then(() => {
      if (this.staging.get(k)?.unit === unit) this.staging.delete(k);
    });
  }

  /** A detection another unit staged under the same key: this unit then relies on that one. */
  private stagedElsewhere(d: NormalizedDetection, unit: AppendUnit): NormalizedDetection | undefined {
    const held = this.staging.get(`${d.source}\u0000${d.id}`);
    if (!held || held.unit === unit) return undefined;
    unit.relyOn(held.unit);
    return held.detection;
  }

  /**
   * A detection the identity already received: the same content is a duplicate (nothing to do);
   * other content under the same `source` + `id` is refused, never dropped silently.
   */
  private async assertSameContent(d: NormalizedDetection, stream: string, unit?: AppendUnit): Promise<void> {
    const staged =
      unit?.stagedDetection(d.source, d.id) ?? (unit ? this.stagedElsewhere(d, unit) : undefined);
    const recorded = staged ? { detection: staged } : await this.recordedDetection(d, stream);
    if (!recorded || (await sameDetectionContent(this.store, recorded, d))) return;
    throw new DuplicateConflictError({
      source: d.source,
      id: d.id,
      recorded: { identity: recorded.detection.identity, stream },
      refused: { identity: d.identity, stream },
      reason: 'different_content',
    });
  }

  /** The detection recorded under `source` + `id`: by the store's index where it has one, else from the stream. */
  private async recordedDetection(
    d: NormalizedDetection,
    stream: string,
  ): Promise<EventDataOf<'DetectionReceived'> | undefined> {
    if (this.store.findDetection) return (await this.store.findDetection(d.source, d.id))?.data;
    for (const e of await this.store.readStream(stream || identityStream(d.identity))) {
      if (
        e.type === 'DetectionReceived' &&
        e.data.detection.source === d.source &&
        e.data.detection.id === d.id
      )
        return e.data;
    }
    return undefined;
  }

  private trackDeadline(key: string, cached: Cached, at = nextDeadline(cached.state)): void {
    if (at === cached.deadline) return; // unchanged: most decisions leave no approval pending
    cached.deadline = at;
    if (at === null) this.deadlines.delete(key);
    else if (cached.state.identity) this.deadlines.set(key, { at, identity: cached.state.identity });
  }

  /** Identities with a pending approval whose deadline is due at `nowMs`: they get a tick input. */
  dueTicks(nowMs: number): DeciderInput[] {
    const due: DeciderInput[] = [];
    const at = new Date(nowMs).toISOString();
    for (const { at: deadline, identity } of this.deadlines.values()) {
      if (deadline <= nowMs) due.push({ type: 'tick', at, identity });
    }
    return due;
  }

  /** Forgets cached state (another writer changed the stream, or memory is reclaimed). */
  evict(identity: IdentityRef): void {
    this.cache.delete(identityKey(identity));
  }

  /** Fills the deadline index from the store on start, so expiries survive a restart. */
  async restoreDeadlines(identities: Iterable<IdentityRef>): Promise<void> {
    for (const identity of identities) {
      const key = identityKey(identity);
      this.trackDeadline(key, await this.load(identity, key));
    }
  }
}
