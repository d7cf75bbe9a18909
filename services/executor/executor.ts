import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  type RetryPolicy,
  retry,
} from 'cockatiel';
import type { Logger } from 'pino';
import {
  isRetriable,
  ProviderError,
  TourniquetError,
  WrongExpectedRevisionError,
} from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import { recordExecutorError } from '../../platform/metrics.ts';
import { type IdentityRef, identityKey } from '../../schemas/detection.ts';
import {
  actionStream,
  type EventDataOf,
  feedbackStream,
  identityStream,
  type NewEvent,
  type RecordedEvent,
  SCHEMA_VERSION,
} from '../../schemas/events.ts';
import type { IdentityProvider, PriorState, ProviderAction } from './providers/port.ts';

type ErrorPhase = 'apply' | 'verify' | 'rollback' | 'feedback';

function errorCode(err: unknown): string {
  return err instanceof TourniquetError ? err.code : 'INTERNAL';
}

export interface ExecutorOptions {
  store: EventStore;
  /** Provider per identity provider name (IdentityRef.provider); '*' is the fallback. */
  providers: Record<string, IdentityProvider>;
  /**
   * Stable across restarts and unique among live instances: a restarted executor recognises its own
   * unfinished claims (and reconciles them at once); two live instances must never share an id.
   */
  executorId: string;
  log?: Logger;
  /**
   * Attempts that reach the provider, per provider call (capture, apply, verify, revert). A provider's
   * Retry-After (ProviderError.retryAfterMs, from a 429 or 503) lengthens the wait before the next
   * attempt, up to maxRetryAfterMs (default 60 s).
   */
  retry?: { maxAttempts?: number; initialDelayMs?: number; maxDelayMs?: number; maxRetryAfterMs?: number };
  /**
   * Per provider. While the circuit is open calls wait for it to half-open; the wait does not spend
   * an action's attempts, so a provider outage stalls the queue instead of failing it wholesale.
   */
  breaker?: { consecutiveFailures?: number; halfOpenAfterMs?: number };
  /**
   * Liveness lease: every executor writes a heartbeat (a checkpoint named `executor-heartbeat:<id>`
   * holding wall-clock ms) every leaseMs/3. A claim whose owner has neither claimed nor beaten for
   * leaseMs is taken over by another executor, which reconciles from the provider's real state.
   */
  leaseMs?: number;
  /**
   * Actions handled at once per provider (each provider has its own slots, so one provider's outage
   * never holds another's); one identity's events are handled in order. Default 8.
   */
  concurrency?: number;
  /**
   * Actions of providers whose circuit is open that may wait in memory while the executor reads on
   * for the other providers (default 10,000); beyond it reading pauses until they drain.
   */
  maxParked?: number;
  now?: () => Date;
}

type Proposal = EventDataOf<'ActionProposed'>;
type Claim = RecordedEvent<'ExecutionClaimed'>;

/** One run of execute() for one action: what was read, and what every step of it refers to. */
interface ExecutionRun {
  identity: IdentityRef;
  actionId: string;
  proposal: Proposal;
  identityEvents: RecordedEvent[];
  history: RecordedEvent[];
  stream: string;
  ref: { actionId: string; caseId: string; identity: IdentityRef };
  request: ProviderAction;
  lastClaim: Claim | undefined;
  causation: string | null;
}

/** A claim this executor holds: the prior state it captured, the stream revision after it. */
interface ClaimHeld {
  prior: PriorState;
  revision: number;
  /** Taken over from an unfinished claim: the effect may already be in place. */
  reconcile: boolean;
}

/** Raised inside provider calls once stop() was called: the action is left claimed, for reconciliation. */
class ExecutorStopping extends Error {
  constructor() {
    super('executor stopping');
    this.name = 'ExecutorStopping';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function heartbeatCheckpoint(executorId: string): string {
  return `executor-heartbeat:${executorId}`;
}

interface ProviderPolicies {
  retry: RetryPolicy;
  breaker: CircuitBreakerPolicy;
}

/**
 * Executes approved actions against identity providers exactly once, and rolls back a case's
 * executed actions when its verdict is benign. Exactly once rests on the action stream:
 * ExecutionClaimed is appended with expected revision 'no_stream' (first writer wins) and carries
 * the prior state; a restart finds its own claim without an outcome and reconciles from the
 * provider's real state instead of calling it blindly again. Claims of an executor that stopped
 * beating are taken over the same way. See docs/executor.md.
 */
export class Executor {
  private readonly store: EventStore;
  private readonly providers: Record<string, IdentityProvider>;
  private readonly id: string;
  private readonly log: Logger | undefined;
  private readonly leaseMs: number;
  private readonly now: () => Date;
  private readonly policies = new Map<string, ProviderPolicies>();
  private readonly retryOpts: Required<NonNullable<ExecutorOptions['retry']>>;
  private readonly breakerOpts: Required<NonNullable<ExecutorOptions['breaker']>>;
  private readonly concurrency: number;
  private subscription: Subscription | undefined;
  /** Actions claimed by another (live) executor: re-examined by sweep() once their lease may have run out. */
  private readonly watch = new Map<string, { identity: IdentityRef; caseId: string }>();
  /** Executed actions of benign cases whose owner is another live executor: it rolls them back, or we do once it is gone. */
  private readonly rollbackWatch = new Map<string, { proposal: Proposal; causationId: string }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  /** Wall-clock ms of our last heartbeat that reached the store (0: not started). */
  private lastBeat = 0;
  private started = false;
  private stopping = false;
  private failed = false;
  private onError: ((err: unknown) => void) | undefined;
  private readonly abort = new AbortController();
  /** Per identity: the tail of its chain of tasks (one identity's events are handled in order). */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly tasks = new Set<Promise<void>>();
  /** Concurrency slots per provider name: active count and the tasks waiting for one. */
  private readonly pools = new Map<string, { active: number; waiters: Array<() => void> }>();
  /** In-flight tasks per provider name, for backpressure that ignores providers with an open circuit. */
  private readonly tasksByPool = new Map<string, number>();
  private readonly maxParked: number;
  /** Dispatched events in position order; the checkpoint advances over the done prefix. */
  private readonly marks: Array<{ position: number; done: boolean }> = [];
  private checkpointChain: Promise<void> = Promise.resolve();
  private checkpointed = 0;
  /** Errors that stopped the executor: surfaced, never swallowed. */
  readonly errors: unknown[] = [];

  constructor(opts: ExecutorOptions) {
    this.store = opts.store;
    this.providers = opts.providers;
    this.id = opts.executorId;
    this.log = opts.log;
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.now = opts.now ?? (() => new Date());
    this.retryOpts = {
      maxAttempts: 5,
      initialDelayMs: 200,
      maxDelayMs: 5000,
      maxRetryAfterMs: 60_000,
      ...opts.retry,
    };
    this.breakerOpts = { consecutiveFailures: 5, halfOpenAfterMs: 10_000, ...opts.breaker };
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.maxParked = Math.max(0, opts.maxParked ?? 10_000);
  }

  private get checkpointName(): string {
    return `executor:${this.id}`;
  }

  async start(onError?: (err: unknown) => void): Promise<void> {
    this.onError = onError;
    this.started = true;
    await this.heartbeat();
    this.beatTimer = setInterval(
      () => {
        this.heartbeat().catch((err: unknown) => this.log?.warn({ err }, 'executor heartbeat failed'));
      },
      Math.max(50, Math.floor(this.leaseMs / 3)),
    );
    this.beatTimer.unref();

    const after = (await this.store.getCheckpoint(this.checkpointName)) ?? 0;
    this.checkpointed = after;
    await this.recover();
    if (this.failed) return;
    this.subscription = this.store.subscribeAll(
      {
        after,
        types: ['ActionApproved', 'CaseResolved'],
        onError: (err) => this.fail(err),
      },
      (event) => this.dispatch(event),
    );
    this.sweepTimer = setInterval(
      () => {
        this.sweep().catch((err: unknown) => {
          this.errors.push(err);
          this.log?.error({ err }, 'executor sweep failed');
        });
      },
      Math.max(1000, Math.floor(this.leaseMs / 2)),
    );
    this.sweepTimer.unref();
  }

  /** Stops taking events, lets the actions in flight finish (or leaves them claimed), saves the checkpoint. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.stopping = true;
    this.abort.abort();
    for (const pool of this.pools.values()) for (const w of pool.waiters.splice(0)) w();
    await this.subscription?.stop();
    await this.idle();
    await this.checkpointChain.catch(() => undefined);
  }

  /** Position of the last event taken from the subscription (dispatched; maybe still in flight). */
  get position(): number {
    return this.subscription?.position ?? 0;
  }

  /** Position up to which every event has been handled and checkpointed. */
  get checkpoint(): number {
    return this.checkpointed;
  }

  /** Resolves when no action is in flight or queued. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  async handle(event: RecordedEvent): Promise<void> {
    if (event.type === 'ActionApproved' && event.data.final) {
      await this.execute(event.data.identity, event.data.actionId, event.data.argsDigest);
    } else if (event.type === 'CaseResolved') {
      if (event.data.verdict === 'benign')
        await this.rollbackCase(event.data.identity, event.data.caseId, event.id);
      await this.sendFeedback(event as RecordedEvent<'CaseResolved'>);
    }
  }

  /**
   * Tells the identity's provider the verdict (malicious: confirm / raise risk; benign: dismiss / lower
   * risk), when the provider has such an API, and records what was called as ProviderFeedbackSent in
   * feedback-<caseId>. Recorded once (first writer wins); a crash before the record sends it again,
   * which the providers' feedback calls tolerate (they set a state, they do not count).
   */
  private async sendFeedback(resolved: RecordedEvent<'CaseResolved'>): Promise<void> {
    const { identity, caseId, verdict } = resolved.data;
    const provider = this.providers[identity.provider] ?? this.providers['*'];
    if (!provider?.feedback) return;
    const stream = feedbackStream(caseId);
    if ((await this.store.readStream(stream)).length > 0) return;
    let calls: Array<{ call: string; ok: boolean; detail: string }>;
    try {
      calls = await this.call(
        provider.name,
        'feedback',
        () => provider.feedback!(identity, verdict, { caseId }),
        {
          attempts: 0,
        },
      );
    } catch (err) {
      if (this.interrupted(err)) return;
      const e = err as Error & { code?: string };
      calls = [{ call: 'feedback', ok: false, detail: `${e.code ?? 'ERROR'}: ${e.message}` }];
    }
    const event: NewEvent = {
      id: `${caseId}-feedback`,
      type: 'ProviderFeedbackSent',
      stream,
      occurredAt: this.now().toISOString(),
      causationId: resolved.id,
      correlationId: caseId,
      schemaVersion: SCHEMA_VERSION,
      data: { caseId, identity, verdict, provider: provider.name, calls },
    } as NewEvent;
    try {
      await this.store.append(stream, [event], 'no_stream');
      this.log?.info({ caseId, provider: provider.name, calls }, 'verdict feedback sent');
    } catch (err) {
      if (!(err instanceof WrongExpectedRevisionError)) throw err;
    }
  }

  /**
   * Re-examines actions claimed by others whose lease may have run out (their executor died), our own
   * claims we let go of, and rollbacks left to another executor.
   */
  async sweep(): Promise<void> {
    const runs: Promise<void>[] = [];
    for (const [actionId, w] of [...this.watch]) {
      this.watch.delete(actionId);
      runs.push(this.schedule(w.identity, () => this.execute(w.identity, actionId, undefined)));
    }
    for (const [actionId, w] of [...this.rollbackWatch]) {
      this.rollbackWatch.delete(actionId);
      runs.push(this.schedule(w.proposal.identity, () => this.rollbackAction(w.proposal, w.causationId)));
    }
    const results = await Promise.allSettled(runs);
    const failure = results.find((r) => r.status === 'rejected');
    if (failure && failure.status === 'rejected') throw failure.reason;
  }

  // ------------------------------------------------------------------ scheduling

  /** The provider an identity's actions go to, by name: its concurrency pool and circuit breaker. */
  private poolOf(identity: IdentityRef): string {
    return (this.providers[identity.provider] ?? this.providers['*'])?.name ?? identity.provider;
  }

  private pool(name: string): { active: number; waiters: Array<() => void> } {
    let p = this.pools.get(name);
    if (!p) {
      p = { active: 0, waiters: [] };
      this.pools.set(name, p);
    }
    return p;
  }

  private async acquire(name: string): Promise<void> {
    const p = this.pool(name);
    if (p.active < this.concurrency || this.stopping) {
      p.active += 1;
      return;
    }
    await new Promise<void>((resolve) => p.waiters.push(resolve));
    p.active += 1;
  }

  private release(name: string): void {
    const p = this.pool(name);
    p.active -= 1;
    p.waiters.shift()?.();
  }

  /**
   * Runs a task after every earlier task of the same identity; holds one of its provider's concurrency
   * slots while it runs.
   */
  private schedule(identity: IdentityRef, task: () => Promise<void>): Promise<void> {
    const key = identityKey(identity);
    const poolName = this.poolOf(identity);
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(async () => {
      if (this.stopping) return; // not started: its event is not checkpointed, so it is handled after a restart
      await this.acquire(poolName);
      try {
        if (this.stopping) return;
        await task();
      } finally {
        this.release(poolName);
      }
    });
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    this.tasks.add(tail);
    this.tasksByPool.set(poolName, (this.tasksByPool.get(poolName) ?? 0) + 1);
    void tail.then(() => {
      this.tasks.delete(tail);
      this.tasksByPool.set(poolName, (this.tasksByPool.get(poolName) ?? 1) - 1);
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  /**
   * Whether reading must pause: too many tasks in flight for providers that are up. Tasks of a
   * provider whose circuit is open are parked instead (up to maxParked), so its outage does not stop
   * the other providers' actions from being read and run.
   */
  private backlogged(): boolean {
    let parked = 0;
    for (const [name, n] of this.tasksByPool) {
      if (this.policies.get(name)?.breaker.state === CircuitState.Open) parked += n;
    }
    const running = this.tasks.size - parked;
    return running >= this.concurrency * 2 || parked > this.maxParked;
  }

  /** The subscription handler: queues the event and returns once there is room for more (backpressure). */
  private async dispatch(event: RecordedEvent): Promise<void> {
    if (this.failed) throw new TourniquetError('INTERNAL', 'executor stopped after an error');
    const identity =
      event.type === 'ActionApproved' || event.type === 'CaseResolved' ? event.data.identity : undefined;
    const mark = { position: event.position, done: false };
    this.marks.push(mark);
    const run = identity ? this.schedule(identity, () => this.handle(event)) : Promise.resolve();
    void run.then(
      () => {
        mark.done = true;
        this.advanceCheckpoint();
      },
      (err: unknown) => this.fail(err),
    );
    // Backpressure: do not read further ahead than `concurrency` events in flight.
    while (!this.stopping && !this.failed && this.backlogged()) {
      // Also look again now and then: a circuit opening parks tasks without finishing any.
      await Promise.race([...this.tasks, sleep(100)]);
    }
  }

  private advanceCheckpoint(): void {
    // Once stopping, tasks may have been cut short: nothing more is checkpointed (handling is idempotent).
    if (this.stopping) return;
    let last: number | undefined;
    while (this.marks.length > 0 && this.marks[0]!.done) last = this.marks.shift()!.position;
    if (last === undefined) return;
    const position = last;
    this.checkpointChain = this.checkpointChain
      .then(() => this.store.saveCheckpoint(this.checkpointName, position))
      .then(
        () => {
          this.checkpointed = Math.max(this.checkpointed, position);
        },
        (err: unknown) => this.fail(err),
      );
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.errors.push(err);
    this.log?.error({ err }, 'executor subscription stopped');
    void this.subscription?.stop();
    this.onError?.(err);
  }

  // ------------------------------------------------------------------ liveness

  private async heartbeat(): Promise<void> {
    const t = this.now().getTime();
    await this.store.saveCheckpoint(heartbeatCheckpoint(this.id), t);
    this.lastBeat = t;
  }

  /** Whether a claim's owner has shown no sign of life (claim or heartbeat) for longer than the lease. */
  private async claimStale(claim: Claim): Promise<boolean> {
    const beat = (await this.store.getCheckpoint(heartbeatCheckpoint(claim.data.executor))) ?? 0;
    const since = Math.max(Date.parse(claim.recordedAt), beat);
    return this.now().getTime() - since > this.leaseMs;
  }

  /** Our own lease: if our heartbeats have not reached the store lately, others may take our claims over. */
  private leaseHeld(): boolean {
    if (!this.started) return true;
    return this.now().getTime() - this.lastBeat < (this.leaseMs * 2) / 3;
  }

  /**
   * On start: our own claims without an outcome are reconciled now (we crashed after claiming);
   * claims of others are watched; executed actions of benign cases that were never rolled back are
   * rolled back (or watched, when their owner is alive and will do it).
   */
  private async recover(): Promise<void> {
    const open = new Map<string, Claim>();
    const executed = new Map<string, EventDataOf<'ActionExecuted'>>();
    const rolledBack = new Set<string>();
    const benign = new Map<string, string>();
    let after = 0;
    for (;;) {
      const page = await this.store.readAll({
        after,
        limit: 5000,
        types: ['ExecutionClaimed', 'ActionExecuted', 'ActionFailed', 'ActionRolledBack', 'CaseResolved'],
      });
      for (const e of page) {
        if (e.type === 'ExecutionClaimed') open.set(e.data.actionId, e as Claim);
        else if (e.type === 'ActionExecuted') {
          open.delete(e.data.actionId);
          executed.set(e.data.actionId, e.data);
        } else if (e.type === 'ActionFailed') open.delete(e.data.actionId);
        else if (e.type === 'ActionRolledBack') rolledBack.add(e.data.actionId);
        else if (e.type === 'CaseResolved' && e.data.verdict === 'benign') benign.set(e.data.caseId, e.id);
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.position;
    }
    for (const [actionId, claim] of open) {
      const identity = claim.data.identity;
      if (claim.data.executor === this.id) {
        this.log?.info({ actionId }, 'reconciling our own unfinished claim');
        void this.schedule(identity, () => this.execute(identity, actionId, undefined)).catch(
          (err: unknown) => this.fail(err),
        );
      } else {
        this.watch.set(actionId, { identity, caseId: claim.data.caseId });
      }
    }
    const cases = new Set<string>();
    for (const [actionId, x] of executed) {
      const causation = benign.get(x.caseId);
      if (!causation || rolledBack.has(actionId) || cases.has(x.caseId)) continue;
      cases.add(x.caseId);
      void this.schedule(x.identity, () => this.rollbackCase(x.identity, x.caseId, causation)).catch(
        (err: unknown) => this.fail(err),
      );
    }
  }

  // ------------------------------------------------------------------ provider calls

  private policiesFor(provider: string): ProviderPolicies {
    let p = this.policies.get(provider);
    if (!p) {
      p = {
        retry: retry(handleWhen(isRetriable), {
          maxAttempts: Math.max(0, this.retryOpts.maxAttempts - 1),
          backoff: new RetryAfterBackoff(
            new ExponentialBackoff({
              initialDelay: this.retryOpts.initialDelayMs,
              maxDelay: this.retryOpts.maxDelayMs,
            }),
            this.retryOpts.maxRetryAfterMs,
          ),
        }),
        breaker: circuitBreaker(handleWhen(isRetriable), {
          halfOpenAfter: this.breakerOpts.halfOpenAfterMs,
          breaker: new ConsecutiveBreaker(this.breakerOpts.consecutiveFailures),
        }),
      };
      this.policies.set(provider, p);
    }
    return p;
  }

  /**
   * One provider call with retries and the provider's circuit breaker. `counter.attempts` counts the
   * calls that reached the provider: waiting on an open circuit is not an attempt.
   */
  private async call<T>(
    provider: string,
    phase: ErrorPhase,
    fn: () => Promise<T>,
    counter: { attempts: number },
  ): Promise<T> {
    const { retry: retryPolicy, breaker } = this.policiesFor(provider);
    let waitingSince: number | undefined;
    let tries = 0;
    return retryPolicy.execute(async () => {
      // Once stop() is called, a call in progress finishes its current attempt but is not retried.
      if (this.stopping && tries > 0) throw new ExecutorStopping();
      tries += 1;
      for (;;) {
        try {
          return await breaker.execute(async () => {
            counter.attempts += 1;
            try {
              return await fn();
            } catch (err) {
              // A failure that will be retried (the final one is counted from its ActionFailed event).
              if (isRetriable(err) && tries < this.retryOpts.maxAttempts && !this.stopping)
                recordExecutorError(provider, errorCode(err), phase);
              throw err;
            }
          });
        } catch (err) {
          if (!(err instanceof BrokenCircuitError)) throw err;
          if (this.stopping) throw new ExecutorStopping();
          if (waitingSince === undefined) {
            waitingSince = Date.now();
            this.log?.warn({ provider }, 'circuit open: waiting for the provider to recover');
          }
          await sleep(Math.min(250, Math.max(10, this.breakerOpts.halfOpenAfterMs / 4)));
        }
      }
    }, this.abort.signal);
  }

  /** A call cut short by stop(): not a failure of the action, which stays claimed (or unclaimed) for later. */
  private interrupted(err: unknown): boolean {
    return err instanceof ExecutorStopping || (this.stopping && isRetriable(err));
  }

  private providerFor(identity: IdentityRef): IdentityProvider {
    const p = this.providers[identity.provider] ?? this.providers['*'];
    if (!p) {
      throw new ProviderError(`no provider configured for identity provider "${identity.provider}"`, {
        retriable: false,
        provider: identity.provider,
      });
    }
    return p;
  }

  private async findProposal(
    identity: IdentityRef,
    actionId: string,
  ): Promise<{ proposal: Proposal; events: RecordedEvent[] }> {
    const events = await this.store.readStream(identityStream(identity));
    const e = events.find(
      (x): x is RecordedEvent<'ActionProposed'> =>
        x.type === 'ActionProposed' && x.data.actionId === actionId,
    );
    if (!e) {
      throw new TourniquetError(
        'NOT_FOUND',
        `no ActionProposed for ${actionId} in ${identityStream(identity)}`,
        { status: 404 },
      );
    }
    return { proposal: e.data, events };
  }

  /**
   * Claim ids name the executor. The store treats an append whose first event id already exists in the
   * stream as an idempotent retry and answers success without checking the expected revision: with one
   * id for every executor, the loser of a claim race would be told it had won, and both would apply.
   */
  private claimId(actionId: string, attempt: number): string {
    return `${actionId}-claim-${attempt}-${this.id}`;
  }

  private envelope<
    T extends 'ExecutionClaimed' | 'ActionExecuted' | 'ActionFailed' | 'ActionVerified' | 'ActionRolledBack',
  >(type: T, id: string, data: EventDataOf<T>, causationId: string | null, caseId: string): NewEvent {
    return {
      id,
      type,
      stream: actionStream(data.actionId),
      occurredAt: this.now().toISOString(),
      causationId,
      correlationId: caseId,
      schemaVersion: SCHEMA_VERSION,
      data,
    } as NewEvent;
  }

  // ------------------------------------------------------------------ execute

  /** Runs one approved action to an outcome: executed (and verified), or failed. */
  async execute(identity: IdentityRef, actionId: string, approvedDigest: string | undefined): Promise<void> {
    const { proposal, events: identityEvents } = await this.findProposal(identity, actionId);
    const stream = actionStream(actionId);
    const history = await this.store.readStream(stream);
    if (history.some((e) => e.type === 'ActionFailed' || e.type === 'ActionRolledBack')) return;
    const approval = identityEvents.find(
      (e) => e.type === 'ActionApproved' && e.data.actionId === actionId && e.data.final,
    );
    const run: ExecutionRun = {
      identity,
      actionId,
      proposal,
      identityEvents,
      history,
      stream,
      ref: { actionId, caseId: proposal.caseId, identity: proposal.identity },
      request: { actionId, action: proposal.action, identity: proposal.identity, args: proposal.args },
      lastClaim: [...history].reverse().find((e): e is Claim => e.type === 'ExecutionClaimed'),
      causation: approval?.id ?? null,
    };
    const executedBefore = history.find(
      (e): e is RecordedEvent<'ActionExecuted'> => e.type === 'ActionExecuted',
    );
    if (executedBefore) return this.verifyUnverified(run, executedBefore);
    const digest =
      approvedDigest ?? (approval?.type === 'ActionApproved' ? approval.data.argsDigest : undefined);

    let provider: IdentityProvider;
    try {
      provider = this.checkedProvider(run, digest);
    } catch (err) {
      await this.recordFailure(history, run.ref, proposal, 'n/a', err, 0, 'apply', run.causation);
      return;
    }
    const claim = await this.claim(run, provider);
    if (!claim) return;
    const applied = await this.applyClaimed(run, provider, claim);
    if (!applied) return;
    await this.verifyAction(
      provider,
      run.request,
      claim.prior,
      applied.result,
      run.ref,
      proposal,
      applied.revision,
    );
    await this.undoIfClearedMeanwhile(run);
  }

  /**
   * Executed but never verified (a crash or a stop between the two): the owner, or whoever takes
   * over from a dead owner, verifies it now. Probes are reads: no effect is repeated.
   */
  private async verifyUnverified(
    run: ExecutionRun,
    executedBefore: RecordedEvent<'ActionExecuted'>,
  ): Promise<void> {
    const { history, lastClaim, identity, proposal } = run;
    if (history.some((e) => e.type === 'ActionVerified')) return;
    if (lastClaim && lastClaim.data.executor !== this.id && !(await this.claimStale(lastClaim))) {
      this.watchRun(run); // verify it if its owner dies first
      return;
    }
    const provider = this.providers[identity.provider] ?? this.providers['*'];
    if (!provider) return;
    await this.verifyAction(
      provider,
      run.request,
      executedBefore.data.priorState,
      executedBefore.data.result,
      run.ref,
      proposal,
      history[history.length - 1]!.revision,
    );
  }

  /** The provider that will act, once the approval, its support and the case allow it; throws why not. */
  private checkedProvider(run: ExecutionRun, digest: string | undefined): IdentityProvider {
    const { proposal } = run;
    const provider = this.providerFor(run.identity);
    if (digest !== proposal.argsDigest) {
      throw new TourniquetError(
        'APPROVAL_INVALID',
        `approval digest ${digest} does not match proposal ${proposal.argsDigest}`,
      );
    }
    if (!provider.supports(proposal.action)) {
      throw new ProviderError(`${provider.name} does not support ${proposal.action}`, {
        retriable: false,
        provider: provider.name,
      });
    }
    // An analyst cleared the case before we reached the action (a backlog): acting now would disrupt
    // a cleared identity and leave residue. Only for unclaimed actions: a claimed one may be in effect.
    const cleared = run.identityEvents.find(
      (e) => e.type === 'CaseResolved' && e.data.caseId === proposal.caseId && e.data.verdict === 'benign',
    );
    if (cleared && !run.lastClaim) {
      throw new TourniquetError(
        'APPROVAL_INVALID',
        `not executed: case ${proposal.caseId} was resolved benign (${cleared.id}) before the executor reached the action; nothing was changed`,
      );
    }
    return provider;
  }

  /**
   * Claims the action: takes over our own unfinished claim or an abandoned one (then reconciles), or
   * captures the prior state and makes the first claim. Undefined when another executor holds it.
   */
  private async claim(run: ExecutionRun, provider: IdentityProvider): Promise<ClaimHeld | undefined> {
    const { lastClaim } = run;
    if (!lastClaim) return this.firstClaim(run, provider);
    const mine = lastClaim.data.executor === this.id;
    if (!mine && !(await this.claimStale(lastClaim))) {
      this.watchRun(run);
      return undefined;
    }
    const prior = lastClaim.data.priorState;
    const attempt = lastClaim.data.attempt + 1;
    let revision: number;
    try {
      const r = await this.store.append(
        run.stream,
        [this.claimEnvelope(run, attempt, prior)],
        run.history[run.history.length - 1]!.revision,
      );
      revision = r.nextRevision;
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) return undefined;
      throw err;
    }
    if (!mine)
      this.log?.warn(
        { actionId: run.actionId, from: lastClaim.data.executor },
        'took over an abandoned claim',
      );
    return { prior, revision, reconcile: true };
  }

  private async firstClaim(run: ExecutionRun, provider: IdentityProvider): Promise<ClaimHeld | undefined> {
    const counter = { attempts: 0 };
    let prior: PriorState;
    try {
      prior = await this.call(provider.name, 'apply', () => provider.capture(run.request), counter);
    } catch (err) {
      if (this.interrupted(err)) return undefined;
      await this.recordFailure(
        run.history,
        run.ref,
        run.proposal,
        provider.name,
        err,
        counter.attempts,
        'apply',
        run.causation,
      );
      return undefined;
    }
    try {
      const r = await this.store.append(run.stream, [this.claimEnvelope(run, 1, prior)], 'no_stream');
      return { prior, revision: r.nextRevision, reconcile: false };
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) {
        // another executor won the claim: watch it, so that we take over if that executor dies first
        this.watchRun(run);
        return undefined;
      }
      throw err;
    }
  }

  private claimEnvelope(run: ExecutionRun, attempt: number, prior: PriorState): NewEvent {
    return this.envelope(
      'ExecutionClaimed',
      this.claimId(run.actionId, attempt),
      {
        ...run.ref,
        action: run.proposal.action,
        executor: this.id,
        attempt,
        priorState: prior,
      },
      run.causation,
      run.proposal.caseId,
    );
  }

  /**
   * Applies the claimed action (or, on a takeover, finds its effect already in place) and records
   * ActionExecuted. Undefined when it stopped short: lease lost, stopped, or failed (recorded).
   */
  private async applyClaimed(
    run: ExecutionRun,
    provider: IdentityProvider,
    claim: ClaimHeld,
  ): Promise<{ result: Record<string, unknown>; revision: number } | undefined> {
    const { actionId, proposal, identity, request } = run;
    const { prior } = claim;
    const counter = { attempts: 0 };
    try {
      if (!this.leaseHeld()) {
        // Our heartbeats are not reaching the store: another executor may take this claim over. Do not
        // call the provider under a lease we may have lost; our sweep reconciles it later.
        this.log?.warn(
          { actionId },
          'lease not held (heartbeats failing): leaving the claim for reconciliation',
        );
        this.watchRun(run);
        return undefined;
      }
      const already = claim.reconcile
        ? await this.call(provider.name, 'apply', () => provider.isApplied(request, prior), { attempts: 0 })
        : false;
      const result: Record<string, unknown> = already
        ? { reconciled: true, note: 'effect found in place after a restart; provider not called again' }
        : await this.call(provider.name, 'apply', () => provider.apply(request, prior), counter);
      const executed = this.envelope(
        'ActionExecuted',
        `${actionId}-executed`,
        {
          ...run.ref,
          action: proposal.action,
          provider: provider.name,
          idempotencyKey: actionId,
          result,
          priorState: prior,
          reconciled: already,
        },
        run.causation,
        proposal.caseId,
      );
      const r = await this.store.append(run.stream, [executed], claim.revision);
      this.log?.info(
        { actionId, action: proposal.action, identity: `${identity.provider}:${identity.id}` },
        'action executed',
      );
      return { result, revision: r.nextRevision };
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) return undefined;
      if (this.interrupted(err)) return undefined; // left claimed: reconciled on restart
      await this.recordFailure(
        await this.store.readStream(run.stream),
        run.ref,
        proposal,
        provider.name,
        err,
        Math.max(counter.attempts, 1),
        'apply',
        run.causation,
      );
      return undefined;
    }
  }

  /** A benign verdict may have landed while we executed: undo at once rather than leave it in place. */
  private async undoIfClearedMeanwhile(run: ExecutionRun): Promise<void> {
    const { identityEvents, proposal } = run;
    const latest = await this.store.readStream(identityStream(run.identity), {
      fromRevision: identityEvents.length,
    });
    const benign = [...identityEvents, ...latest].find(
      (e) => e.type === 'CaseResolved' && e.data.caseId === proposal.caseId && e.data.verdict === 'benign',
    );
    if (benign) await this.rollbackAction(proposal, benign.id);
  }

  /** Watches a claim another executor holds (or that we let go), to take it over if its owner dies. */
  private watchRun(run: ExecutionRun): void {
    this.watch.set(run.actionId, { identity: run.identity, caseId: run.proposal.caseId });
  }

  /** Probes the effect and records ActionVerified, or ActionFailed(verify) that an analyst sees. */
  private async verifyAction(
    provider: IdentityProvider,
    request: ProviderAction,
    prior: PriorState,
    result: Record<string, unknown>,
    ref: { actionId: string; caseId: string; identity: IdentityRef },
    proposal: Proposal,
    revision: number,
  ): Promise<void> {
    const { actionId } = ref;
    const stream = actionStream(actionId);
    const counter = { attempts: 0 };
    try {
      const probes = await this.call(
        provider.name,
        'verify',
        () => provider.verify(request, prior, result),
        counter,
      );
      const failed = probes.filter((p) => !p.ok);
      if (failed.length > 0) {
        throw new TourniquetError(
          'PROVIDER_VERIFY_FAILED',
          `verification failed: ${failed.map((p) => `${p.probe}: ${p.detail}`).join('; ')}`,
          {
            details: { probes },
          },
        );
      }
      await this.store.append(
        stream,
        [
          this.envelope(
            'ActionVerified',
            `${actionId}-verified`,
            { ...ref, probes },
            `${actionId}-executed`,
            proposal.caseId,
          ),
        ],
        revision,
      );
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError || this.interrupted(err)) return;
      await this.recordFailure(
        await this.store.readStream(stream),
        ref,
        proposal,
        provider.name,
        err,
        Math.max(counter.attempts, 1),
        'verify',
        `${actionId}-executed`,
      );
    }
  }

  private async recordFailure(
    history: RecordedEvent[],
    ref: { actionId: string; caseId: string; identity: IdentityRef },
    proposal: Proposal,
    provider: string,
    err: unknown,
    attempts: number,
    phase: 'apply' | 'verify' | 'rollback',
    causation: string | null,
  ): Promise<void> {
    const e =
      err instanceof TourniquetError
        ? err
        : new TourniquetError('INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
    this.log?.warn({ actionId: ref.actionId, phase, code: e.code, err: e.message }, 'action failed');
    const expected = history.length === 0 ? 'no_stream' : history[history.length - 1]!.revision;
    try {
      await this.store.append(
        actionStream(ref.actionId),
        [
          this.envelope(
            'ActionFailed',
            `${ref.actionId}-failed-${phase}`,
            {
              ...ref,
              action: proposal.action,
              provider,
              error: { code: e.code, message: e.message, retriable: e.retriable },
              attempts,
              phase,
            },
            causation,
            ref.caseId,
          ),
        ],
        expected,
      );
    } catch (appendErr) {
      if (!(appendErr instanceof WrongExpectedRevisionError)) throw appendErr;
    }
  }

  // ------------------------------------------------------------------ rollback

  /** Reverts a case's executed actions, newest first. */
  async rollbackCase(identity: IdentityRef, caseId: string, causationId: string): Promise<void> {
    const events = await this.store.readStream(identityStream(identity));
    const proposals = events
      .filter(
        (e): e is RecordedEvent<'ActionProposed'> => e.type === 'ActionProposed' && e.data.caseId === caseId,
      )
      .map((e) => e.data);
    for (const proposal of proposals.reverse()) await this.rollbackAction(proposal, causationId);
  }

  /**
   * Reverts one executed action from the prior state it captured. Every executor sees the verdict, but
   * only the action's owner (the executor of its last claim) reverts it while that owner is alive; the
   * others watch and take over if it dies first. A repeated revert (crash before ActionRolledBack)
   * restores the same captured state again, which the provider does as a no-op.
   */
  private async rollbackAction(proposal: Proposal, causationId: string): Promise<void> {
    const stream = actionStream(proposal.actionId);
    const history = await this.store.readStream(stream);
    const executed = history.find((e): e is RecordedEvent<'ActionExecuted'> => e.type === 'ActionExecuted');
    if (!executed) return;
    if (history.some((e) => e.type === 'ActionRolledBack')) return;
    const owner = [...history].reverse().find((e): e is Claim => e.type === 'ExecutionClaimed');
    if (owner && owner.data.executor !== this.id && !(await this.claimStale(owner))) {
      this.rollbackWatch.set(proposal.actionId, { proposal, causationId });
      return;
    }
    const ref = { actionId: proposal.actionId, caseId: proposal.caseId, identity: proposal.identity };
    const request: ProviderAction = {
      actionId: proposal.actionId,
      action: proposal.action,
      identity: proposal.identity,
      args: proposal.args,
    };
    const counter = { attempts: 0 };
    let provider: IdentityProvider;
    try {
      provider = this.providerFor(proposal.identity);
      const reverted = await this.call(
        provider.name,
        'rollback',
        () => provider.revert(request, executed.data.priorState, executed.data.result),
        counter,
      );
      const residue = [...new Set([...reverted.residue, ...proposal.rollback.notes])];
      await this.store.append(
        stream,
        [
          this.envelope(
            'ActionRolledBack',
            `${proposal.actionId}-rolled-back`,
            {
              ...ref,
              action: proposal.action,
              restored: reverted.restored,
              residue,
              complete: residue.length === 0,
            },
            causationId,
            proposal.caseId,
          ),
        ],
        history[history.length - 1]!.revision,
      );
      this.log?.info({ actionId: proposal.actionId, residue }, 'action rolled back');
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError || this.interrupted(err)) return;
      await this.recordFailure(
        history,
        ref,
        proposal,
        proposal.identity.provider,
        err,
        Math.max(counter.attempts, 1),
        'rollback',
        causationId,
      );
    }
  }
}

type BackoffContext = IRetryBackoffContext<unknown>;

/**
 * Exponential backoff that waits at least as long as the provider asked (Retry-After on a 429 or 503,
 * carried as ProviderError.retryAfterMs), capped so one answer cannot park an action for hours.
 */
export class RetryAfterBackoff implements IBackoffFactory<BackoffContext> {
  private readonly inner: IBackoffFactory<BackoffContext>;
  private readonly capMs: number;
  constructor(inner: IBackoffFactory<BackoffContext>, capMs: number) {
    this.inner = inner;
    this.capMs = capMs;
  }

  next(context: BackoffContext): IBackoff<BackoffContext> {
    return withRetryAfter(this.inner.next(context), context, this.capMs);
  }
}

function withRetryAfter(
  base: IBackoff<BackoffContext>,
  context: BackoffContext,
  capMs: number,
): IBackoff<BackoffContext> {
  const err = 'error' in context.result ? context.result.error : undefined;
  const asked = err instanceof ProviderError ? err.retryAfterMs : undefined;
  return {
    duration: asked === undefined ? base.duration : Math.max(base.duration, Math.min(asked, capMs)),
    next: (c) => withRetryAfter(base.next(c), c, capMs),
  };
}
