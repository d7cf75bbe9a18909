import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ExponentialBackoff,
  type IPolicy,
  circuitBreaker,
  handleWhen,
  retry,
  wrap,
} from 'cockatiel';
import type { Logger } from 'pino';
import { ProviderError, TourniquetError, WrongExpectedRevisionError, isRetriable } from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import {
  SCHEMA_VERSION,
  actionStream,
  identityStream,
  type EventDataOf,
  type NewEvent,
  type RecordedEvent,
} from '../../schemas/events.ts';
import type { IdentityProvider, PriorState, ProviderAction } from './providers/port.ts';

export interface ExecutorOptions {
  store: EventStore;
  /** Provider per identity provider name (IdentityRef.provider); '*' is the fallback. */
  providers: Record<string, IdentityProvider>;
  /** Stable across restarts: a restarted executor recognises its own unfinished claims. */
  executorId: string;
  log?: Logger;
  retry?: { maxAttempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  breaker?: { consecutiveFailures?: number; halfOpenAfterMs?: number };
  /** A claim older than this with no outcome is taken over by another executor. */
  leaseMs?: number;
  now?: () => Date;
}

type Proposal = EventDataOf<'ActionProposed'>;

/**
 * Executes approved actions against identity providers exactly once, and rolls back a case's
 * executed actions when its verdict is benign. Exactly once rests on the action stream:
 * ExecutionClaimed is appended with expected revision 'no_stream' (first writer wins) and carries
 * the prior state; a restart finds its own claim without an outcome and reconciles from the
 * provider's real state instead of calling it blindly again.
 */
export class Executor {
  private readonly store: EventStore;
  private readonly providers: Record<string, IdentityProvider>;
  private readonly id: string;
  private readonly log: Logger | undefined;
  private readonly leaseMs: number;
  private readonly now: () => Date;
  private readonly policies = new Map<string, IPolicy>();
  private readonly retryOpts: Required<NonNullable<ExecutorOptions['retry']>>;
  private readonly breakerOpts: Required<NonNullable<ExecutorOptions['breaker']>>;
  private subscription: Subscription | undefined;
  private readonly watch = new Map<string, { identity: IdentityRef; caseId: string }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Errors that stopped the subscription: surfaced, never swallowed. */
  readonly errors: unknown[] = [];

  constructor(opts: ExecutorOptions) {
    this.store = opts.store;
    this.providers = opts.providers;
    this.id = opts.executorId;
    this.log = opts.log;
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.now = opts.now ?? (() => new Date());
    this.retryOpts = { maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 5000, ...opts.retry };
    this.breakerOpts = { consecutiveFailures: 5, halfOpenAfterMs: 10_000, ...opts.breaker };
  }

  private get checkpointName(): string {
    return `executor:${this.id}`;
  }

  async start(onError?: (err: unknown) => void): Promise<void> {
    const after = (await this.store.getCheckpoint(this.checkpointName)) ?? 0;
    this.subscription = this.store.subscribeAll(
      {
        after,
        types: ['ActionApproved', 'CaseResolved'],
        onError: (err) => {
          this.errors.push(err);
          this.log?.error({ err }, 'executor subscription stopped');
          onError?.(err);
        },
      },
      async (event) => {
        await this.handle(event);
        await this.store.saveCheckpoint(this.checkpointName, event.position);
      },
    );
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => {
        this.errors.push(err);
        this.log?.error({ err }, 'executor sweep failed');
      });
    }, Math.max(1000, Math.floor(this.leaseMs / 2)));
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.subscription?.stop();
  }

  get position(): number {
    return this.subscription?.position ?? 0;
  }

  async handle(event: RecordedEvent): Promise<void> {
    if (event.type === 'ActionApproved' && event.data.final) {
      await this.execute(event.data.identity, event.data.actionId, event.data.argsDigest);
    } else if (event.type === 'CaseResolved' && event.data.verdict === 'benign') {
      await this.rollbackCase(event.data.identity, event.data.caseId, event.id);
    }
  }

  /** Re-examines actions claimed by others whose lease may have run out (their executor died). */
  async sweep(): Promise<void> {
    for (const [actionId, w] of [...this.watch]) {
      this.watch.delete(actionId);
      await this.execute(w.identity, actionId, undefined);
    }
  }

  private policyFor(provider: string): IPolicy {
    let p = this.policies.get(provider);
    if (!p) {
      const retryPolicy = retry(handleWhen((err) => isRetriable(err) || err instanceof BrokenCircuitError), {
        maxAttempts: this.retryOpts.maxAttempts - 1,
        backoff: new ExponentialBackoff({ initialDelay: this.retryOpts.initialDelayMs, maxDelay: this.retryOpts.maxDelayMs }),
      });
      const breaker = circuitBreaker(handleWhen(isRetriable), {
        halfOpenAfter: this.breakerOpts.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.breakerOpts.consecutiveFailures),
      });
      p = wrap(retryPolicy, breaker);
      this.policies.set(provider, p);
    }
    return p;
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

  private async findProposal(identity: IdentityRef, actionId: string): Promise<{ proposal: Proposal; events: RecordedEvent[] }> {
    const events = await this.store.readStream(identityStream(identity));
    const e = events.find((x) => x.type === 'ActionProposed' && x.data.actionId === actionId);
    if (!e || e.type !== 'ActionProposed') {
      throw new TourniquetError('NOT_FOUND', `no ActionProposed for ${actionId} in ${identityStream(identity)}`, { status: 404 });
    }
    return { proposal: e.data, events };
  }

  private envelope<T extends 'ExecutionClaimed' | 'ActionExecuted' | 'ActionFailed' | 'ActionVerified' | 'ActionRolledBack'>(
    type: T,
    id: string,
    data: EventDataOf<T>,
    causationId: string | null,
    caseId: string,
  ): NewEvent {
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

  /** Runs one approved action to an outcome: executed (and verified), or failed. */
  async execute(identity: IdentityRef, actionId: string, approvedDigest: string | undefined): Promise<void> {
    const { proposal, events: identityEvents } = await this.findProposal(identity, actionId);
    const stream = actionStream(actionId);
    const history = await this.store.readStream(stream);
    if (history.some((e) => e.type === 'ActionExecuted' || e.type === 'ActionFailed' || e.type === 'ActionRolledBack')) return;
    const ref = { actionId, caseId: proposal.caseId, identity: proposal.identity };
    const request: ProviderAction = { actionId, action: proposal.action, identity: proposal.identity, args: proposal.args };
    const approval = identityEvents.find((e) => e.type === 'ActionApproved' && e.data.actionId === actionId && e.data.final);
    const causation = approval?.id ?? null;
    const digest = approvedDigest ?? (approval?.type === 'ActionApproved' ? approval.data.argsDigest : undefined);

    let provider: IdentityProvider;
    try {
      provider = this.providerFor(identity);
      if (digest !== proposal.argsDigest) {
        throw new TourniquetError('APPROVAL_INVALID', `approval digest ${digest} does not match proposal ${proposal.argsDigest}`);
      }
      if (!provider.supports(proposal.action)) {
        throw new ProviderError(`${provider.name} does not support ${proposal.action}`, { retriable: false, provider: provider.name });
      }
    } catch (err) {
      await this.recordFailure(history, ref, proposal, 'n/a', err, 0, 'apply', causation);
      return;
    }

    const lastClaim = [...history].reverse().find((e) => e.type === 'ExecutionClaimed');
    let prior: PriorState;
    let claimRevision: number;
    let reconcile = false;
    if (lastClaim && lastClaim.type === 'ExecutionClaimed') {
      const mine = lastClaim.data.executor === this.id;
      const stale = this.now().getTime() - Date.parse(lastClaim.recordedAt) > this.leaseMs;
      if (!mine && !stale) {
        this.watch.set(actionId, { identity, caseId: proposal.caseId });
        return;
      }
      // Our own unfinished claim (we crashed) or an abandoned one: take it over, then reconcile.
      prior = lastClaim.data.priorState;
      try {
        const r = await this.store.append(
          stream,
          [
            this.envelope(
              'ExecutionClaimed',
              `${actionId}-claim-${lastClaim.data.attempt + 1}`,
              { ...ref, action: proposal.action, executor: this.id, attempt: lastClaim.data.attempt + 1, priorState: prior },
              causation,
              proposal.caseId,
            ),
          ],
          history[history.length - 1]!.revision,
        );
        claimRevision = r.nextRevision;
      } catch (err) {
        if (err instanceof WrongExpectedRevisionError) return;
        throw err;
      }
      reconcile = true;
    } else {
      try {
        prior = await this.policyFor(provider.name).execute(() => provider.capture(request));
      } catch (err) {
        await this.recordFailure(history, ref, proposal, provider.name, err, this.retryOpts.maxAttempts, 'apply', causation);
        return;
      }
      try {
        const r = await this.store.append(
          stream,
          [
            this.envelope(
              'ExecutionClaimed',
              `${actionId}-claim-1`,
              { ...ref, action: proposal.action, executor: this.id, attempt: 1, priorState: prior },
              causation,
              proposal.caseId,
            ),
          ],
          'no_stream',
        );
        claimRevision = r.nextRevision;
      } catch (err) {
        if (err instanceof WrongExpectedRevisionError) return; // another executor won the claim
        throw err;
      }
    }

    let result: Record<string, unknown>;
    let attempts = 0;
    try {
      const already = reconcile ? await this.policyFor(provider.name).execute(() => provider.isApplied(request, prior)) : false;
      if (already) {
        result = { reconciled: true, note: 'effect found in place after a restart; provider not called again' };
      } else {
        result = await this.policyFor(provider.name).execute(() => {
          attempts += 1;
          return provider.apply(request, prior);
        });
      }
      const executed = this.envelope(
        'ActionExecuted',
        `${actionId}-executed`,
        {
          ...ref,
          action: proposal.action,
          provider: provider.name,
          idempotencyKey: actionId,
          result,
          priorState: prior,
          reconciled: already,
        },
        causation,
        proposal.caseId,
      );
      const r = await this.store.append(stream, [executed], claimRevision);
      claimRevision = r.nextRevision;
      this.log?.info({ actionId, action: proposal.action, identity: `${identity.provider}:${identity.id}` }, 'action executed');
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) return;
      await this.recordFailure(
        await this.store.readStream(stream),
        ref,
        proposal,
        provider.name,
        err,
        Math.max(attempts, 1),
        'apply',
        causation,
      );
      return;
    }

    try {
      const probes = await this.policyFor(provider.name).execute(() => provider.verify(request, prior, result));
      const failed = probes.filter((p) => !p.ok);
      if (failed.length === 0) {
        await this.store.append(
          stream,
          [this.envelope('ActionVerified', `${actionId}-verified`, { ...ref, probes }, `${actionId}-executed`, proposal.caseId)],
          claimRevision,
        );
      } else {
        throw new TourniquetError('PROVIDER_VERIFY_FAILED', `verification failed: ${failed.map((p) => `${p.probe}: ${p.detail}`).join('; ')}`, {
          details: { probes },
        });
      }
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) return;
      await this.recordFailure(await this.store.readStream(stream), ref, proposal, provider.name, err, 1, 'verify', `${actionId}-executed`);
    }

    // A benign verdict may have landed while we executed: undo at once rather than leave it in place.
    const latest = await this.store.readStream(identityStream(identity), { fromRevision: identityEvents.length });
    const benign = latest.find((e) => e.type === 'CaseResolved' && e.data.caseId === proposal.caseId && e.data.verdict === 'benign');
    if (benign) await this.rollbackAction(proposal, benign.id);
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
    const e = err instanceof TourniquetError ? err : new TourniquetError('INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
    this.log?.warn({ actionId: ref.actionId, phase, code: e.code, err: e.message }, 'action failed');
    const expected = history.length === 0 ? 'no_stream' : history[history.length - 1]!.revision;
    try {
      await this.store.append(
        actionStream(ref.actionId),
        [
          this.envelope(
            'ActionFailed',
            `${ref.actionId}-failed-${phase}`,
            { ...ref, action: proposal.action, provider, error: { code: e.code, message: e.message, retriable: e.retriable }, attempts, phase },
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

  /** Reverts a case's executed actions, newest first. */
  async rollbackCase(identity: IdentityRef, caseId: string, causationId: string): Promise<void> {
    const events = await this.store.readStream(identityStream(identity));
    const proposals = events
      .filter((e): e is RecordedEvent<'ActionProposed'> => e.type === 'ActionProposed' && e.data.caseId === caseId)
      .map((e) => e.data);
    for (const proposal of proposals.reverse()) await this.rollbackAction(proposal, causationId);
  }

  private async rollbackAction(proposal: Proposal, causationId: string): Promise<void> {
    const stream = actionStream(proposal.actionId);
    const history = await this.store.readStream(stream);
    const executed = history.find((e) => e.type === 'ActionExecuted');
    if (!executed || executed.type !== 'ActionExecuted') return;
    if (history.some((e) => e.type === 'ActionRolledBack')) return;
    const ref = { actionId: proposal.actionId, caseId: proposal.caseId, identity: proposal.identity };
    const request: ProviderAction = { actionId: proposal.actionId, action: proposal.action, identity: proposal.identity, args: proposal.args };
    let provider: IdentityProvider;
    try {
      provider = this.providerFor(proposal.identity);
      // revert restores captured state: doing it twice (two executors) restores the same state twice.
      const reverted = await this.policyFor(provider.name).execute(() =>
        provider.revert(request, executed.data.priorState, executed.data.result),
      );
      const residue = [...new Set([...reverted.residue, ...proposal.rollback.notes])];
      await this.store.append(
        stream,
        [
          this.envelope(
            'ActionRolledBack',
            `${proposal.actionId}-rolled-back`,
            { ...ref, action: proposal.action, restored: reverted.restored, residue, complete: residue.length === 0 },
            causationId,
            proposal.caseId,
          ),
        ],
        history[history.length - 1]!.revision,
      );
      this.log?.info({ actionId: proposal.actionId, residue }, 'action rolled back');
    } catch (err) {
      if (err instanceof WrongExpectedRevisionError) return;
      await this.recordFailure(history, ref, proposal, proposal.identity.provider, err, this.retryOpts.maxAttempts, 'rollback', causationId);
    }
  }
}
