import { z } from 'zod';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { ProposalReversibility } from '../../schemas/capabilities.ts';
import { IdentityRef, identityKey } from '../../schemas/detection.ts';
import {
  ActionType,
  Actor,
  ApprovalMode,
  actionStream,
  BlastRadius,
  feedbackStream,
  GuardNote,
  identityStream,
  NoActionReason,
  RawRecordRef,
  type RecordedEvent,
} from '../../schemas/events.ts';
import { actorName } from './projector.ts';
import { ActionStatus } from './views.ts';

/**
 * Why did this action happen, who or what approved it, what did it do, was it undone and what
 * could not be undone? Built from the event streams alone (the identity's stream and the action's
 * stream), never from a projection's copy: the projection only tells where to look.
 */

const Ref = z.object({ eventId: z.string(), position: z.number().int(), at: z.string() });

export const Explanation = z.object({
  actionId: z.string(),
  action: ActionType,
  identity: IdentityRef,
  identityKey: z.string(),
  caseId: z.string(),
  status: ActionStatus,
  verified: z.boolean(),
  detections: z.array(
    Ref.extend({
      id: z.string(),
      source: z.string(),
      kind: z.string(),
      confidence: z.number(),
      severity: z.string(),
      occurredAt: z.string(),
      title: z.string().nullable(),
      /** The raw vendor record's digest and size (GET /v1/audit/raw-records/:sha256); null when none was kept apart. */
      rawRecord: RawRecordRef.nullable(),
    }),
  ),
  decision: Ref.extend({
    ruleId: z.string(),
    policyId: z.string(),
    policyVersion: z.string(),
    stage: z.number().int(),
    proposedBy: z.string().nullable(),
    args: z.record(z.string(), z.unknown()),
    argsDigest: z.string(),
    blastRadius: BlastRadius,
  }),
  guards: z.object({
    applied: z.array(GuardNote),
    tripped: z.array(
      Ref.extend({
        guard: z.string(),
        scope: z.string(),
        limit: z.number().int(),
        windowSeconds: z.number().int(),
      }),
    ),
    coordination: Ref.extend({ partner: z.string(), grant: z.string(), reason: z.string() }).nullable(),
  }),
  approval: z.object({
    mode: ApprovalMode,
    reason: z.string(),
    expiresAt: z.string(),
    approvals: z.array(
      Ref.extend({
        by: Actor,
        approver: z.string(),
        final: z.boolean(),
        argsDigest: z.string(),
        /** The approval names exactly the proposal's argument digest. */
        boundToProposal: z.boolean(),
      }),
    ),
    rejection: Ref.extend({ by: Actor, reason: z.string() }).nullable(),
    expiry: Ref.extend({ expiredAt: z.string() }).nullable(),
  }),
  execution: z.object({
    claims: z.array(Ref.extend({ executor: z.string(), attempt: z.number().int() })),
    executed: Ref.extend({
      provider: z.string(),
      idempotencyKey: z.string(),
      result: z.record(z.string(), z.unknown()),
      priorState: z.record(z.string(), z.unknown()),
      reconciled: z.boolean(),
    }).nullable(),
    failures: z.array(
      Ref.extend({
        phase: z.string(),
        provider: z.string(),
        code: z.string(),
        message: z.string(),
        retriable: z.boolean(),
        attempts: z.number().int(),
      }),
    ),
  }),
  verification: Ref.extend({
    holds: z.boolean(),
    probes: z.array(z.object({ probe: z.string(), ok: z.boolean(), detail: z.string() })),
  }).nullable(),
  case: z.object({
    openedAt: z.string().nullable(),
    resolution: Ref.extend({ verdict: z.enum(['benign', 'malicious']), by: Actor }).nullable(),
    /** The case's detections that led to no automatic action, and why (NoActionTaken). */
    noActions: z.array(Ref.extend({ detectionId: z.string(), reasons: z.array(NoActionReason) })),
  }),
  rollback: z.object({
    /** What the proposal already said a rollback could not undo. */
    plan: z.object({ complete: z.boolean(), notes: z.array(z.string()) }),
    /** What the acting provider declared it can undo of this action, shown with the proposal. */
    reversibility: ProposalReversibility.nullable(),
    /** A rollback the provider refused (irreversible), with its reason: never silently skipped. */
    refused: Ref.extend({ code: z.string(), reason: z.string() }).nullable(),
    performed: Ref.extend({
      restored: z.array(z.string()),
      residue: z.array(z.string()),
      complete: z.boolean(),
    }).nullable(),
  }),
  /** What could NOT be restored: the rollback's residue (empty until rolled back). */
  residue: z.array(z.string()),
  /** The verdict told to the provider's own detection, when it has a feedback API. */
  feedback: Ref.extend({
    provider: z.string(),
    verdict: z.enum(['benign', 'malicious']),
    calls: z.array(z.object({ call: z.string(), ok: z.boolean(), detail: z.string() })),
  }).nullable(),
  /** Every event of the chain, in global order. */
  events: z.array(
    z.object({
      position: z.number().int(),
      id: z.string(),
      type: z.string(),
      stream: z.string(),
      occurredAt: z.string(),
      recordedAt: z.string(),
      causationId: z.string().nullable(),
    }),
  ),
  /** The chain in sentences, in order. */
  narrative: z.array(z.string()),
});
export type Explanation = z.infer<typeof Explanation>;

const ref = (e: RecordedEvent) => ({ eventId: e.id, position: e.position, at: e.occurredAt });

function of<T extends RecordedEvent['type']>(
  events: RecordedEvent[],
  type: T,
): Array<Extract<RecordedEvent, { type: T }>> {
  return events.filter((e): e is Extract<RecordedEvent, { type: T }> => e.type === type);
}

/** Explains one action from the store; undefined when its proposal is not in the identity's stream. */
export async function explainAction(
  store: EventStore,
  where: { identity: Pick<IdentityRef, 'provider' | 'id'> },
  actionId: string,
): Promise<Explanation | undefined> {
  const idEvents = await store.readStream(identityStream(where.identity));
  const actEvents = (await store.readStream(actionStream(actionId))).filter(
    (e) => (e.data as { actionId?: unknown }).actionId === actionId,
  );
  const proposal = of(idEvents, 'ActionProposed').find((e) => e.data.actionId === actionId);
  if (!proposal) return undefined;
  const p = proposal.data;
  const feedback = of(await store.readStream(feedbackStream(p.caseId)), 'ProviderFeedbackSent').at(-1);
  const mine = <T extends { data: unknown }>(e: T) =>
    (e.data as { actionId?: unknown }).actionId === actionId;

  const detections = p.detectionIds
    .map((id) =>
      of(idEvents, 'DetectionReceived')
        .filter((e) => e.data.detection.id === id && e.position <= proposal.position)
        .at(-1),
    )
    .filter((e): e is Extract<RecordedEvent, { type: 'DetectionReceived' }> => e !== undefined);
  const caseOpened = of(idEvents, 'CaseOpened').find((e) => e.data.caseId === p.caseId);
  const noActions = of(idEvents, 'NoActionTaken').filter((e) => e.data.caseId === p.caseId);
  const tripped = of(idEvents, 'GuardTripped').filter((e) => e.causationId === proposal.id);
  const coordination = of(idEvents, 'CoordinationRequested').find(mine);
  const approvals = of(idEvents, 'ActionApproved').filter(mine);
  const rejection = of(idEvents, 'ActionRejected').find(mine);
  const expiry = of(idEvents, 'ActionExpired').find(mine);
  const resolution = of(idEvents, 'CaseResolved').find(
    (e) => e.data.caseId === p.caseId && e.position > proposal.position,
  );
  const claims = of(actEvents, 'ExecutionClaimed');
  const executed = of(actEvents, 'ActionExecuted').at(-1);
  const failures = of(actEvents, 'ActionFailed');
  const verified = of(actEvents, 'ActionVerified').at(-1);
  const rolledBack = of(actEvents, 'ActionRolledBack').at(-1);
  const refusedRollback = failures.find(
    (f) => f.data.phase === 'rollback' && f.data.error.code === 'ROLLBACK_REFUSED',
  );

  // Status, from the same events and by the same rules as the action view.
  let status: ActionStatus = 'proposed';
  const chain: RecordedEvent[] = [
    ...detections,
    ...(caseOpened ? [caseOpened] : []),
    proposal,
    ...tripped,
    ...(coordination ? [coordination] : []),
    ...approvals,
    ...(rejection ? [rejection] : []),
    ...(expiry ? [expiry] : []),
    ...(resolution ? [resolution] : []),
    ...actEvents,
  ].sort((a, b) => a.position - b.position);
  const seen = new Set<string>();
  const events = chain.filter((e) => {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    return true;
  });
  for (const e of events) {
    if (!mine(e)) continue;
    if (e.type === 'ActionApproved' && e.data.final && status === 'proposed') status = 'approved';
    else if (e.type === 'ActionRejected') status = 'rejected';
    else if (e.type === 'ActionExpired') status = 'expired';
    else if (e.type === 'ActionExecuted') status = 'executed';
    else if (e.type === 'ActionFailed' && e.data.phase !== 'rollback') status = 'failed';
    else if (e.type === 'ActionRolledBack') status = 'rolled_back';
  }
  const holds = verified ? verified.data.probes.every((x) => x.ok) : false;
  const proposedBy =
    p.ruleId === 'manual' && typeof p.args.proposedBy === 'string' ? p.args.proposedBy : null;

  const narrative: string[] = [];
  const key = identityKey(p.identity);
  for (const d of detections) {
    const x = d.data.detection;
    narrative.push(
      `${d.occurredAt}: detection ${x.id} from ${x.source}: ${x.kind} on ${key}, confidence ${x.confidence}, severity ${x.severity} (event ${d.id}).`,
    );
  }
  if (caseOpened) narrative.push(`${caseOpened.occurredAt}: case ${p.caseId} opened.`);
  for (const n of noActions)
    narrative.push(
      `${n.occurredAt}: no automatic action on detection ${n.data.detectionId}: ${n.data.reasons.map((r) => r.detail).join('; ')}.`,
    );
  narrative.push(
    `${proposal.occurredAt}: ${p.action} proposed by ${proposedBy ? `analyst ${proposedBy}` : `rule ${p.ruleId}`} of policy ${p.policyId} version ${p.policyVersion}, stage ${p.stage}; approval required: ${p.approval.mode} (${p.approval.reason}); argument digest ${p.argsDigest}.`,
  );
  if (p.reversibility) {
    const r = p.reversibility;
    narrative.push(
      `before approval: ${p.action} on ${r.type} (provider ${r.provider}) is ${r.reversibility}${r.residue.length ? `; a rollback cannot put back: ${r.residue.join('; ')}` : ''}.`,
    );
  }
  for (const g of p.guards) narrative.push(`guard ${g.guard}: ${g.effect} because ${g.reason}.`);
  for (const t of tripped)
    narrative.push(
      `${t.occurredAt}: guard ${t.data.guard} tripped (limit ${t.data.limit} per ${t.data.windowSeconds}s).`,
    );
  if (coordination)
    narrative.push(
      `${coordination.occurredAt}: coordination requested with ${coordination.data.partner} (grant ${coordination.data.grant}).`,
    );
  for (const a of approvals) {
    const who =
      a.data.by.kind === 'policy'
        ? `pre-authorised by rule ${a.data.by.ruleId} of policy ${a.data.by.policyId}@${a.data.by.policyVersion}`
        : `approved by ${actorName(a.data.by)}`;
    const bound =
      a.data.argsDigest === p.argsDigest
        ? 'bound to the proposed arguments'
        : 'DIGEST MISMATCH with the proposal';
    narrative.push(`${a.occurredAt}: ${who}${a.data.final ? '' : ' (first of two approvals)'}, ${bound}.`);
  }
  if (rejection)
    narrative.push(
      `${rejection.occurredAt}: rejected by ${actorName(rejection.data.by)}: ${rejection.data.reason}.`,
    );
  if (expiry) narrative.push(`${expiry.occurredAt}: approval window expired at ${expiry.data.expiredAt}.`);
  for (const c of claims)
    narrative.push(
      `${c.occurredAt}: executor ${c.data.executor} claimed the action (attempt ${c.data.attempt}).`,
    );
  for (const f of failures)
    narrative.push(
      `${f.occurredAt}: ${f.data.phase} failed on ${f.data.provider}: ${f.data.error.code} ${f.data.error.message}.`,
    );
  if (executed) {
    narrative.push(
      `${executed.occurredAt}: executed on ${executed.data.provider} (idempotency key ${executed.data.idempotencyKey})${executed.data.reconciled ? ', reconciled after a restart' : ''}; prior state captured for rollback.`,
    );
  }
  if (verified) {
    narrative.push(
      `${verified.occurredAt}: verification ${holds ? 'holds' : 'FAILED'}: ${verified.data.probes.map((x) => `${x.probe} ${x.ok ? 'ok' : 'failed'}`).join(', ')}.`,
    );
  }
  if (resolution)
    narrative.push(
      `${resolution.occurredAt}: case resolved ${resolution.data.verdict} by ${actorName(resolution.data.by)}.`,
    );
  if (rolledBack) {
    const r = rolledBack.data;
    narrative.push(
      `${rolledBack.occurredAt}: rolled back${r.complete ? '' : ' incompletely'}; restored: ${r.restored.join('; ') || 'nothing'}; residue (not restorable): ${r.residue.join('; ') || 'none'}.`,
    );
  } else if (refusedRollback) {
    narrative.push(
      `${refusedRollback.occurredAt}: rollback REFUSED by ${refusedRollback.data.provider}; the action stays in effect: ${refusedRollback.data.error.message}.`,
    );
  } else if (!p.rollback.complete) {
    narrative.push(`if rolled back, the proposal says this would remain: ${p.rollback.notes.join('; ')}.`);
  }
  if (feedback) {
    const f = feedback.data;
    narrative.push(
      `${feedback.occurredAt}: verdict ${f.verdict} told to ${f.provider}: ${f.calls.map((c) => `${c.call} ${c.ok ? 'ok' : `FAILED (${c.detail})`}`).join('; ') || 'no call'}.`,
    );
  }

  return {
    actionId,
    action: p.action,
    identity: p.identity,
    identityKey: key,
    caseId: p.caseId,
    status,
    verified: holds,
    detections: detections.map((d) => ({
      ...ref(d),
      id: d.data.detection.id,
      source: d.data.detection.source,
      kind: d.data.detection.kind,
      confidence: d.data.detection.confidence,
      severity: d.data.detection.severity,
      occurredAt: d.data.detection.occurredAt,
      title: d.data.detection.title ?? null,
      rawRecord: d.data.rawRecord ?? null,
    })),
    decision: {
      ...ref(proposal),
      ruleId: p.ruleId,
      policyId: p.policyId,
      policyVersion: p.policyVersion,
      stage: p.stage,
      proposedBy,
      args: p.args,
      argsDigest: p.argsDigest,
      blastRadius: p.blastRadius,
    },
    guards: {
      applied: p.guards,
      tripped: tripped.map((t) => ({
        ...ref(t),
        guard: t.data.guard,
        scope: t.data.scope,
        limit: t.data.limit,
        windowSeconds: t.data.windowSeconds,
      })),
      coordination: coordination
        ? {
            ...ref(coordination),
            partner: coordination.data.partner,
            grant: coordination.data.grant,
            reason: coordination.data.reason,
          }
        : null,
    },
    approval: {
      mode: p.approval.mode,
      reason: p.approval.reason,
      expiresAt: p.approval.expiresAt,
      approvals: approvals.map((a) => ({
        ...ref(a),
        by: a.data.by,
        approver: actorName(a.data.by)!,
        final: a.data.final,
        argsDigest: a.data.argsDigest,
        boundToProposal: a.data.argsDigest === p.argsDigest,
      })),
      rejection: rejection
        ? { ...ref(rejection), by: rejection.data.by, reason: rejection.data.reason }
        : null,
      expiry: expiry ? { ...ref(expiry), expiredAt: expiry.data.expiredAt } : null,
    },
    execution: {
      claims: claims.map((c) => ({ ...ref(c), executor: c.data.executor, attempt: c.data.attempt })),
      executed: executed
        ? {
            ...ref(executed),
            provider: executed.data.provider,
            idempotencyKey: executed.data.idempotencyKey,
            result: executed.data.result,
            priorState: executed.data.priorState,
            reconciled: executed.data.reconciled ?? false,
          }
        : null,
      failures: failures.map((f) => ({
        ...ref(f),
        phase: f.data.phase,
        provider: f.data.provider,
        code: f.data.error.code,
        message: f.data.error.message,
        retriable: f.data.error.retriable,
        attempts: f.data.attempts,
      })),
    },
    verification: verified ? { ...ref(verified), holds, probes: verified.data.probes } : null,
    case: {
      openedAt: caseOpened?.occurredAt ?? null,
      resolution: resolution
        ? { ...ref(resolution), verdict: resolution.data.verdict, by: resolution.data.by }
        : null,
      noActions: noActions.map((n) => ({
        ...ref(n),
        detectionId: n.data.detectionId,
        reasons: n.data.reasons,
      })),
    },
    rollback: {
      plan: p.rollback,
      reversibility: p.reversibility ?? null,
      refused: refusedRollback
        ? {
            ...ref(refusedRollback),
            code: refusedRollback.data.error.code,
            reason: refusedRollback.data.error.message,
          }
        : null,
      performed: rolledBack
        ? {
            ...ref(rolledBack),
            restored: rolledBack.data.restored,
            residue: rolledBack.data.residue,
            complete: rolledBack.data.complete,
          }
        : null,
    },
    residue: rolledBack?.data.residue ?? [],
    feedback: feedback
      ? {
          ...ref(feedback),
          provider: feedback.data.provider,
          verdict: feedback.data.verdict,
          calls: feedback.data.calls,
        }
      : null,
    events: events.map((e) => ({
      position: e.position,
      id: e.id,
      type: e.type,
      stream: e.stream,
      occurredAt: e.occurredAt,
      recordedAt: e.recordedAt,
      causationId: e.causationId,
    })),
    narrative,
  };
}
