import type { Logger } from 'pino';
import type { SchedulerLike } from 'rxjs';
import { type Bus, type BusMessage, type BusSubscription, TOPICS } from '../../platform/bus/port.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import type { ProviderCapabilities } from '../../schemas/capabilities.ts';
import { CONTROL_STREAM, type NewEvent, SCHEMA_VERSION } from '../../schemas/events.ts';
import type { AutomationGateway, DeciderGateway } from '../../schemas/gateways.ts';
import type { DetectionMessage, DetectionOutcome } from '../../schemas/messages.ts';
import type { CatalogueIndex } from './core/catalogue.ts';
import type { DeciderInput } from './core/types.ts';
import { DeciderEngine, type DecisionResult } from './engine.ts';
import { runDeciderPipeline } from './pipeline.ts';
import type { LoadedPolicy } from './policy/load.ts';

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

  constructor(opts: {
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

  async handleDetections(messages: ReadonlyArray<BusMessage<DetectionMessage>>): Promise<DetectionOutcome[]> {
    const results = await Promise.all(
      messages.map((m) => this.decide({ type: 'detection', at: m.value.at, detection: m.value.detection })),
    );
    return results.map((r) => {
      const received = r.events.find((e) => e.type === 'DetectionReceived');
      return received ? { status: 'accepted', eventId: received.id } : { status: 'duplicate' };
    });
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
