import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import type { SchedulerLike } from 'rxjs';
import { type Bus, type BusMessage, type BusSubscription, TOPICS } from '../../platform/bus/port.ts';
import { canonicalJson } from '../../platform/digest.ts';
import { DuplicateConflictError, WrongExpectedRevisionError } from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import type { ProviderCapabilities } from '../../schemas/capabilities.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import {
  CONTROL_STREAM,
  DETECTION_CONFLICTS_STREAM,
  type NewEvent,
  SCHEMA_VERSION,
} from '../../schemas/events.ts';
import type { AutomationGateway, DeciderGateway } from '../../schemas/gateways.ts';
import type { DetectionMessage, DetectionOutcome } from '../../schemas/messages.ts';
import { AppendUnit } from './append-unit.ts';
import type { CatalogueIndex } from './core/catalogue.ts';
import type { DeciderInput } from './core/types.ts';
import { DeciderEngine, type DecisionResult } from './engine.ts';
import { runDeciderPipeline } from './pipeline.ts';
import type { LoadedPolicy } from './policy/load.ts';

/** Attempts at a batch whose identities another writer moved on meanwhile. */
const BATCH_ATTEMPTS = 5;

/**
 * The decider service: consumes detections from the bus, takes human commands from the API,
 * ticks for approval expiry, and follows control events (pause/resume, catalogue) from the store.
 */
export class DeciderService implements DeciderGateway, AutomationGateway {
  readonly engine: DeciderEngine;
  private readonly store: EventStore;
  private readonly bus: Bus;
  private readonly log: Logger | undefined;
  private readonly now: () => Date;
  private pipeline: ReturnType<typeof runDeciderPipeline> | undefined;
  private busSub: BusSubscription | undefined;
  private controlSub: Subscription | undefined;
  private readonly scheduler: SchedulerLike | undefined;
  private readonly tickMs: number | undefined;
  private readonly wholeBatches: boolean;
  /** The batch being decided (decideUnit): the next one waits for it. */
  private deciding: Promise<void> = Promise.resolve();

  constructor(opts: {
    /**
     * A batch of detections is one request (embedded mode: one HTTP call): a conflicting duplicate in
     * it refuses the whole batch (DuplicateConflictError, 409). Otherwise (a Kafka consumer batch)
     * only the conflicting detection is refused and the rest is appended.
     */
    wholeBatches?: boolean;
    store: EventStore;
    bus: Bus;
    policy: LoadedPolicy;
    catalogue?: CatalogueIndex;
    log?: Logger;
    now?: () => Date;
    scheduler?: SchedulerLike;
    tickMs?: number;
    /** Bound of the identity state cache (default DEFAULT_MAX_CACHED_IDENTITIES). */
    maxCachedIdentities?: number;
    /** What the configured providers can undo (DeciderContext.capabilities). */
    capabilities?: ProviderCapabilities | undefined;
  }) {
    this.store = opts.store;
    this.bus = opts.bus;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
    this.scheduler = opts.scheduler;
    this.tickMs = opts.tickMs;
    this.wholeBatches = opts.wholeBatches ?? false;
    this.engine = new DeciderEngine({
      store: opts.store,
      policy: opts.policy,
      ...(opts.catalogue ? { catalogue: opts.catalogue } : {}),
      ...(opts.log ? { log: opts.log } : {}),
      ...(opts.maxCachedIdentities ? { maxCachedIdentities: opts.maxCachedIdentities } : {}),
      ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
    });
  }

  async start(): Promise<void> {
    await this.engine.start();
    this.pipeline = runDeciderPipeline(this.engine, {
      ...(this.scheduler ? { scheduler: this.scheduler } : {}),
      ...(this.tickMs ? { tickMs: this.tickMs } : {}),
      onTickError: (err) => this.log?.error({ err }, 'expiry tick failed; it is retried on the next tick'),
    });
    const head = await this.store.headPosition();
    this.controlSub = this.store.subscribeAll(
      {
        after: head,
        types: ['AutomationPaused', 'AutomationResumed', 'IdentityCatalogued', 'StormResolved'],
        onError: (err) => this.log?.error({ err }, 'control subscription stopped'),
      },
      (e) => this.engine.applyControl(e),
    );
    this.busSub = await this.bus.subscribe<DetectionMessage>(TOPICS.detections, 'decider', (messages) =>
      this.handleDetections(messages),
    );
  }

  /**
   * Decides one batch's detections into a unit and starts its commit, one batch at a time: batches
   * handled concurrently are decided one after the other (deciding is CPU work, nothing to wait for)
   * and their commits queued in that same order, so a batch built on an earlier one's staged
   * decisions is written after it, in the same group commit where the store has one. The next batch
   * is decided while this one's commit waits for the disk.
   */
  private async decideUnit(
    messages: ReadonlyArray<BusMessage<DetectionMessage>>,
    pending: readonly number[],
  ): Promise<{ settled: PromiseSettledResult<DecisionResult>[]; committing?: Promise<unknown> }> {
    const before = this.deciding;
    let release: () => void = () => undefined;
    this.deciding = new Promise<void>((resolve) => {
      release = resolve;
    });
    await before;
    try {
      if (!this.pipeline) throw new Error('decider service is not started');
      const pipeline = this.pipeline;
      const unit = new AppendUnit();
      const settled = await Promise.allSettled(
        pending.map((i) => {
          const m = messages[i]!.value;
          return pipeline.submit({ type: 'detection', at: m.at, detection: m.detection }, unit);
        }),
      );
      if (settled.some((r) => r.status === 'rejected')) {
        unit.abort();
        return { settled };
      }
      const committing = unit.commit(this.store);
      committing.catch(() => undefined); // awaited by the caller; this only keeps it from being "unhandled" meanwhile
      return { settled, committing };
    } finally {
      release();
    }
  }

  /**
   * Decides a batch of detections and appends it whole, in one transaction (AppendUnit): nothing of
   * it is written unless all of it is. A conflicting duplicate is recorded for the auditor and then
   * refuses the batch (wholeBatches) or just itself; a batch whose identities moved on meanwhile is
   * decided again.
   */
  async handleDetections(messages: ReadonlyArray<BusMessage<DetectionMessage>>): Promise<DetectionOutcome[]> {
    const outcomes: DetectionOutcome[] = messages.map(() => ({ status: 'conflict' }));
    let pending = messages.map((_, i) => i);
    for (let attempt = 1; ; attempt++) {
      const { settled, committing } = await this.decideUnit(messages, pending);
      const failed = settled.find(
        (r): r is PromiseRejectedResult =>
          r.status === 'rejected' && !(r.reason instanceof DuplicateConflictError),
      );
      if (failed) throw failed.reason;
      let conflicts = settled.flatMap((r, k) =>
        r.status === 'rejected' ? [{ index: pending[k]!, err: r.reason as DuplicateConflictError }] : [],
      );
      if (committing) {
        try {
          await committing;
          for (const [k, r] of settled.entries()) {
            const received = (r as PromiseFulfilledResult<DecisionResult>).value.events.find(
              (e) => e.type === 'DetectionReceived',
            );
            outcomes[pending[k]!] = received
              ? { status: 'accepted', eventId: received.id }
              : { status: 'duplicate' };
          }
          return outcomes;
        } catch (err) {
          if (err instanceof WrongExpectedRevisionError && attempt < BATCH_ATTEMPTS) continue;
          if (!(err instanceof DuplicateConflictError)) throw err;
          conflicts = pending
            .filter(
              (i) =>
                sameKey(messages[i]!.value.detection, err) && refusedBy(messages[i]!.value.detection, err),
            )
            .map((index) => ({ index, err }));
          if (conflicts.length === 0) throw err;
        }
      }
      await this.recordConflicts(
        conflicts.map((c) => ({ detection: messages[c.index]!.value.detection, err: c.err })),
      );
      if (this.wholeBatches) throw conflicts[0]!.err;
      const refused = new Set(conflicts.map((c) => c.index));
      pending = pending.filter((i) => !refused.has(i));
    }
  }

  /** Conflicting duplicates, recorded for the auditor (idempotent: the same refusal is recorded once). */
  private async recordConflicts(
    conflicts: ReadonlyArray<{ detection: NormalizedDetection; err: DuplicateConflictError }>,
  ): Promise<void> {
    for (const { detection, err } of conflicts) {
      const digest = hash('sha256', canonicalJson(detection)).slice(0, 16);
      const event = {
        id: `conflict-${detection.source}:${detection.id}-${digest}`,
        type: 'DetectionConflicted',
        stream: DETECTION_CONFLICTS_STREAM,
        occurredAt: this.now().toISOString(),
        causationId: err.recorded.eventId ?? null,
        correlationId: null,
        schemaVersion: SCHEMA_VERSION,
        data: {
          source: detection.source,
          id: detection.id,
          reason: err.reason,
          recorded: err.recorded,
          refused: { identity: detection.identity, stream: err.refused.stream, detection },
        },
      } as NewEvent;
      await this.store.append(DETECTION_CONFLICTS_STREAM, [event], 'any');
      this.log?.warn(
        {
          source: detection.source,
          id: detection.id,
          reason: err.reason,
          recorded: err.recorded.identity,
          refused: detection.identity,
        },
        'conflicting duplicate detection refused and recorded',
      );
    }
  }

  decide(input: DeciderInput): Promise<DecisionResult> {
    if (!this.pipeline) throw new Error('decider service is not started');
    return this.pipeline.submit(input);
  }

  async submit(input: DeciderInput): Promise<{ events: NewEvent[] }> {
    const r = await this.decide(input);
    return { events: r.events };
  }

  paused(): boolean {
    return this.engine.automationPaused;
  }

  pause(by: string, reason: string): Promise<NewEvent> {
    return this.control('AutomationPaused', by, reason);
  }

  resume(by: string, reason: string): Promise<NewEvent> {
    return this.control('AutomationResumed', by, reason);
  }

  /** An analyst ends a storm's hold: the rule's actions may be automatic again. */
  async resolveStorm(stormId: string, ruleId: string, by: string, comment?: string): Promise<NewEvent> {
    const at = this.now();
    const event: NewEvent = {
      id: `${stormId}-resolved-${at.getTime()}`,
      type: 'StormResolved',
      stream: CONTROL_STREAM,
      occurredAt: at.toISOString(),
      causationId: `${stormId}-detected`,
      correlationId: null,
      schemaVersion: SCHEMA_VERSION,
      data: {
        stormId,
        ruleId,
        reason: 'analyst',
        by: { kind: 'human', id: by },
        ...(comment ? { comment } : {}),
      },
    };
    await this.store.append(CONTROL_STREAM, [event], 'any');
    this.engine.applyControl(event);
    return event;
  }

  private async control(
    type: 'AutomationPaused' | 'AutomationResumed',
    by: string,
    reason: string,
  ): Promise<NewEvent> {
    const at = this.now();
    const event = {
      id: `${type === 'AutomationPaused' ? 'pause' : 'resume'}-${at.getTime()}-${by}`,
      type,
      stream: CONTROL_STREAM,
      occurredAt: at.toISOString(),
      causationId: null,
      correlationId: null,
      schemaVersion: SCHEMA_VERSION,
      data: { by: { kind: 'human', id: by }, reason },
    } as NewEvent;
    await this.store.append(CONTROL_STREAM, [event], 'any');
    this.engine.applyControl(event); // honoured at once, before the subscription sees it
    return event;
  }

  async stop(): Promise<void> {
    await this.busSub?.stop();
    this.pipeline?.stop();
    await this.controlSub?.stop();
  }
}

const sameKey = (d: NormalizedDetection, err: DuplicateConflictError) =>
  d.source === err.source && d.id === err.detectionId;

/** Whether `d` is the copy the store refused (not the one that holds the key). */
const refusedBy = (d: NormalizedDetection, err: DuplicateConflictError) =>
  identityKey(d.identity) === identityKey(err.refused.identity);
