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

/**
 * The case's detections that led to no automatic action, and why, in stream order: NoActionTaken
 * (a detection that opened the case) and DetectionReceived carrying its reasons (one that joined it).
 */
function caseNoActions(
  events: RecordedEvent[],
  caseId: string,
): Array<{ event: RecordedEvent; detectionId: string; reasons: NoActionReason[] }> {
  const out: Array<{ event: RecordedEvent; detectionId: string; reasons: NoActionReason[] }> = [];
  for (const e of events) {
    if (e.type === 'NoActionTaken' && e.data.caseId === caseId) {
      out.push({ event: e, detectionId: e.data.detectionId, reasons: e.data.reasons });
    } else if (e.type === 'DetectionReceived' && e.data.noAction && e.correlationId === caseId) {
      out.push({ event: e, detectionId: e.data.detection.id, reasons: e.data.noAction });
    }
  }
  return out;
}

function of<T extends RecordedEvent['type']>(
  events: RecordedEvent[],
  type: T,
): Array<Extract<RecordedEvent, { type: T }>> {
  return events.filter((e): e is Extract<RecordedEvent, { type: T }> => e.type === type);
}

type Of<T extends RecordedEvent['type']> = Extract<RecordedEvent, { type: T }>;

/** The events of one action's chain, picked out of its identity's and its action's streams. */
interface ActionChain {
  actionId: string;
  proposal: Of<'ActionProposed'>;
  actEvents: RecordedEvent[];
  feedback: Of<'ProviderFeedbackSent'> | undefined;
  detections: Array<Of<'DetectionReceived'>>;
  caseOpened: Of<'CaseOpened'> | undefined;
  noActions: ReturnType<typeof caseNoActions>;
  tripped: Array<Of<'GuardTripped'>>;
  coordination: Of<'CoordinationRequested'> | undefined;
  approvals: Array<Of<'ActionApproved'>>;
  rejection: Of<'ActionRejected'> | undefined;
  expiry: Of<'ActionExpired'> | undefined;
  resolution: Of<'CaseResolved'> | undefined;
  claims: Array<Of<'ExecutionClaimed'>>;
  executed: Of<'ActionExecuted'> | undefined;
  failures: Array<Of<'ActionFailed'>>;
  verified: Of<'ActionVerified'> | undefined;
  rolledBack: Of<'ActionRolledBack'> | undefined;
  refusedRollback: Of<'ActionFailed'> | undefined;
}

/** What is worked out of the chain and shown both in the explanation and in its narrative. */
interface ChainFacts {
  key: string;
  holds: boolean;
  proposedBy: string | null;
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
  const feedback = of(
    await store.readStream(feedbackStream(proposal.data.caseId)),
    'ProviderFeedbackSent',
  ).at(-1);
  const chain = pickChain(actionId, idEvents, actEvents, proposal, feedback);
  const events = chainEvents(chain);
  const p = proposal.data;
  const facts: ChainFacts = {
    key: identityKey(p.identity),
    holds: chain.verified ? chain.verified.data.probes.every((x) => x.ok) : false,
    proposedBy: p.ruleId === 'manual' && typeof p.args.proposedBy === 'string' ? p.args.proposedBy : null,
  };
  return toExplanation(chain, events, actionStatus(events, actionId), facts);
}

const belongsTo =
  (actionId: string) =>
  <T extends { data: unknown }>(e: T) =>
    (e.data as { actionId?: unknown }).actionId === actionId;

/** Picks the action's events out of the streams it was read from. */
function pickChain(
  actionId: string,
  idEvents: RecordedEvent[],
  actEvents: RecordedEvent[],
  proposal: Of<'ActionProposed'>,
  feedback: Of<'ProviderFeedbackSent'> | undefined,
): ActionChain {
  const p = proposal.data;
  const mine = belongsTo(actionId);
  const detections = p.detectionIds
    .map((id) =>
      of(idEvents, 'DetectionReceived')
        .filter((e) => e.data.detection.id === id && e.position <= proposal.position)
        .at(-1),
    )
    .filter((e): e is Of<'DetectionReceived'> => e !== undefined);
  const failures = of(actEvents, 'ActionFailed');
  return {
    actionId,
    proposal,
    actEvents,
    feedback,
    detections,
    caseOpened: of(idEvents, 'CaseOpened').find((e) => e.data.caseId === p.caseId),
    noActions: caseNoActions(idEvents, p.caseId),
    tripped: of(idEvents, 'GuardTripped').filter((e) => e.causationId === proposal.id),
    coordination: of(idEvents, 'CoordinationRequested').find(mine),
    approvals: of(idEvents, 'ActionApproved').filter(mine),
    rejection: of(idEvents, 'ActionRejected').find(mine),
    expiry: of(idEvents, 'ActionExpired').find(mine),
    resolution: of(idEvents, 'CaseResolved').find(
      (e) => e.data.caseId === p.caseId && e.position > proposal.position,
    ),
    claims: of(actEvents, 'ExecutionClaimed'),
    executed: of(actEvents, 'ActionExecuted').at(-1),
    failures,
    verified: of(actEvents, 'ActionVerified').at(-1),
    rolledBack: of(actEvents, 'ActionRolledBack').at(-1),
    refusedRollback: failures.find(
      (f) => f.data.phase === 'rollback' && f.data.error.code === 'ROLLBACK_REFUSED',
    ),
  };
}

/** Every event of the chain once, in global order. */
function chainEvents(c: ActionChain): RecordedEvent[] {
  const chain: RecordedEvent[] = [
    ...c.detections,
    ...(c.caseOpened ? [c.caseOpened] : []),
    c.proposal,
    ...c.tripped,
    ...(c.coordination ? [c.coordination] : []),
    ...c.approvals,
    ...(c.rejection ? [c.rejection] : []),
    ...(c.expiry ? [c.expiry] : []),
    ...(c.resolution ? [c.resolution] : []),
    ...c.actEvents,
  ].sort((a, b) => a.position - b.position);
  const seen = new Set<string>();
  return chain.filter((e) => {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    return true;
  });
}

/** Status, from the same events and by the same rules as the action view. */
function actionStatus(events: RecordedEvent[], actionId: string): ActionStatus {
  const mine = belongsTo(actionId);
  let status: ActionStatus = 'proposed';
  for (const e of events) {
    if (!mine(e)) continue;
    if (e.type === 'ActionApproved' && e.data.final && status === 'proposed') status = 'approved';
    else if (e.type === 'ActionRejected') status = 'rejected';
    else if (e.type === 'ActionExpired') status = 'expired';
    else if (e.type === 'ActionExecuted') status = 'executed';
    else if (e.type === 'ActionFailed' && e.data.phase !== 'rollback') status = 'failed';
    else if (e.type === 'ActionRolledBack') status = 'rolled_back';
  }
  return status;
}

/** The chain in sentences, in order: detections, case, proposal, guards and approvals. */
function narrateDecision(c: ActionChain, facts: ChainFacts): string[] {
  const narrative: string[] = [];
  const p = c.proposal.data;
  for (const d of c.detections) {
    const x = d.data.detection;
    narrative.push(
      `${d.occurredAt}: detection ${x.id} from ${x.source}: ${x.kind} on ${facts.key}, confidence ${x.confidence}, severity ${x.severity} (event ${d.id}).`,
    );
  }
  if (c.caseOpened) narrative.push(`${c.caseOpened.occurredAt}: case ${p.caseId} opened.`);
  for (const n of c.noActions)
    narrative.push(
      `${n.event.occurredAt}: no automatic action on detection ${n.detectionId}: ${n.reasons.map((r) => r.detail).join('; ')}.`,
    );
  narrative.push(
    `${c.proposal.occurredAt}: ${p.action} proposed by ${facts.proposedBy ? `analyst ${facts.proposedBy}` : `rule ${p.ruleId}`} of policy ${p.policyId} version ${p.policyVersion}, stage ${p.stage}; approval required: ${p.approval.mode} (${p.approval.reason}); argument digest ${p.argsDigest}.`,
  );
  if (p.reversibility) {
    const r = p.reversibility;
    narrative.push(
      `before approval: ${p.action} on ${r.type} (provider ${r.provider}) is ${r.reversibility}${r.residue.length ? `; a rollback cannot put back: ${r.residue.join('; ')}` : ''}.`,
    );
  }
  for (const g of p.guards) narrative.push(`guard ${g.guard}: ${g.effect} because ${g.reason}.`);
  for (const t of c.tripped)
    narrative.push(
      `${t.occurredAt}: guard ${t.data.guard} tripped (limit ${t.data.limit} per ${t.data.windowSeconds}s).`,
    );
  if (c.coordination)
    narrative.push(
      `${c.coordination.occurredAt}: coordination requested with ${c.coordination.data.partner} (grant ${c.coordination.data.grant}).`,
    );
  for (const a of c.approvals) {
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
  if (c.rejection)
    narrative.push(
      `${c.rejection.occurredAt}: rejected by ${actorName(c.rejection.data.by)}: ${c.rejection.data.reason}.`,
    );
  if (c.expiry)
    narrative.push(`${c.expiry.occurredAt}: approval window expired at ${c.expiry.data.expiredAt}.`);
  return narrative;
}

/** The chain in sentences, in order: execution, verification, resolution, rollback and feedback. */
function narrateOutcome(c: ActionChain, facts: ChainFacts): string[] {
  const narrative: string[] = [];
  const p = c.proposal.data;
  for (const cl of c.claims)
    narrative.push(
      `${cl.occurredAt}: executor ${cl.data.executor} claimed the action (attempt ${cl.data.attempt}).`,
    );
  for (const f of c.failures)
    narrative.push(
      `${f.occurredAt}: ${f.data.phase} failed on ${f.data.provider}: ${f.data.error.code} ${f.data.error.message}.`,
    );
  if (c.executed) {
    narrative.push(
      `${c.executed.occurredAt}: executed on ${c.executed.data.provider} (idempotency key ${c.executed.data.idempotencyKey})${c.executed.data.reconciled ? ', reconciled after a restart' : ''}; prior state captured for rollback.`,
    );
  }
  if (c.verified) {
    narrative.push(
      `${c.verified.occurredAt}: verification ${facts.holds ? 'holds' : 'FAILED'}: ${c.verified.data.probes.map((x) => `${x.probe} ${x.ok ? 'ok' : 'failed'}`).join(', ')}.`,
    );
  }
  if (c.resolution)
    narrative.push(
      `${c.resolution.occurredAt}: case resolved ${c.resolution.data.verdict} by ${actorName(c.resolution.data.by)}.`,
    );
  if (c.rolledBack) {
    const r = c.rolledBack.data;
    narrative.push(
      `${c.rolledBack.occurredAt}: rolled back${r.complete ? '' : ' incompletely'}; restored: ${r.restored.join('; ') || 'nothing'}; residue (not restorable): ${r.residue.join('; ') || 'none'}.`,
    );
  } else if (c.refusedRollback) {
    narrative.push(
      `${c.refusedRollback.occurredAt}: rollback REFUSED by ${c.refusedRollback.data.provider}; the action stays in effect: ${c.refusedRollback.data.error.message}.`,
    );
  } else if (!p.rollback.complete) {
    narrative.push(`if rolled back, the proposal says this would remain: ${p.rollback.notes.join('; ')}.`);
  }
  if (c.feedback) {
    const f = c.feedback.data;
    narrative.push(
      `${c.feedback.occurredAt}: verdict ${f.verdict} told to ${f.provider}: ${f.calls.map((call) => `${call.call} ${call.ok ? 'ok' : `FAILED (${call.detail})`}`).join('; ') || 'no call'}.`,
    );
  }
  return narrative;
}

/** The detections, decision, guards and approval parts of the explanation. */
function explainDecision(c: ActionChain, facts: ChainFacts) {
  const { proposal, tripped, coordination, approvals, rejection, expiry } = c;
  const p = proposal.data;
  return {
    detections: c.detections.map((d) => ({
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
      proposedBy: facts.proposedBy,
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
  };
}

/** The execution, verification, case, rollback and feedback parts of the explanation. */
function explainOutcome(c: ActionChain, facts: ChainFacts) {
  const { executed, verified, resolution, refusedRollback, rolledBack, feedback } = c;
  const p = c.proposal.data;
  return {
    execution: {
      claims: c.claims.map((cl) => ({ ...ref(cl), executor: cl.data.executor, attempt: cl.data.attempt })),
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
      failures: c.failures.map((f) => ({
        ...ref(f),
        phase: f.data.phase,
        provider: f.data.provider,
        code: f.data.error.code,
        message: f.data.error.message,
        retriable: f.data.error.retriable,
        attempts: f.data.attempts,
      })),
    },
    verification: verified ? { ...ref(verified), holds: facts.holds, probes: verified.data.probes } : null,
    case: {
      openedAt: c.caseOpened?.occurredAt ?? null,
      resolution: resolution
        ? { ...ref(resolution), verdict: resolution.data.verdict, by: resolution.data.by }
        : null,
      noActions: c.noActions.map((n) => ({
        ...ref(n.event),
        detectionId: n.detectionId,
        reasons: n.reasons,
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
  };
}

function toExplanation(
  c: ActionChain,
  events: RecordedEvent[],
  status: ActionStatus,
  facts: ChainFacts,
): Explanation {
  const p = c.proposal.data;
  return {
    actionId: c.actionId,
    action: p.action,
    identity: p.identity,
    identityKey: facts.key,
    caseId: p.caseId,
    status,
    verified: facts.holds,
    ...explainDecision(c, facts),
    ...explainOutcome(c, facts),
    events: events.map((e) => ({
      position: e.position,
      id: e.id,
      type: e.type,
      stream: e.stream,
      occurredAt: e.occurredAt,
      recordedAt: e.recordedAt,
      causationId: e.causationId,
    })),
    narrative: [...narrateDecision(c, facts), ...narrateOutcome(c, facts)],
  };
}
