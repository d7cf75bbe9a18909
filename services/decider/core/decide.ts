import { canonicalJson, sha256Hex } from '../../../platform/digest.ts';
import { ApprovalError, NotFoundError } from '../../../platform/errors.ts';
import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import { type IdentityRef, identityKey, type NormalizedDetection } from '../../../schemas/detection.ts';
import {
  type ActionType,
  type EventDataOf,
  type EventType,
  identityStream,
  type NewEvent,
  type NoActionReason,
  SCHEMA_VERSION,
} from '../../../schemas/events.ts';
import type { Rule, Stage } from '../policy/schema.ts';
import { DISABLING, INHERENT_RESIDUE } from './actions.ts';
import { ruleSelects } from './compiled-policy.ts';
import type { DeciderContext } from './context.ts';
import { hasSeen } from './dedupe.ts';
import { identityTag } from './evolve.ts';
import { GUARDS } from './guards/index.ts';
import type { DecisionBudget, GuardContext, PlanDraft } from './guards/types.ts';
import { gathering, heldReasons, stageBlocked, untaken } from './no-action.ts';
import { parseTime } from './time.ts';
import type { ActionState, DeciderInput, EvidenceItem, HumanActor, IdentityState } from './types.ts';

export type { DeciderContext } from './context.ts';

type Draft = {
  [K in EventType]: { id: string; type: K; data: EventDataOf<K>; causationId: string | null };
}[EventType];

/** Builds envelopes for one decision: same stream, same time, correlated by case. */
class Emitter {
  readonly events: NewEvent[];
  private readonly stream: string;
  private readonly at: string;
  constructor(stream: string, at: string, events: NewEvent[] = []) {
    this.stream = stream;
    this.at = at;
    this.events = events;
  }
  emit(draft: Draft, correlationId: string | null): string {
    this.events.push({
      id: draft.id,
      type: draft.type,
      stream: this.stream,
      occurredAt: this.at,
      causationId: draft.causationId,
      correlationId,
      schemaVersion: SCHEMA_VERSION,
      data: draft.data,
    } as NewEvent);
    return draft.id;
  }
}

function catalogueEntry(ctx: DeciderContext, identity: IdentityRef, atMs: number): CatalogueEntry {
  const known = ctx.catalogue.lookup(identity, atMs);
  if (known) return known;
  const d = ctx.policy.policy.defaults.unknownIdentity;
  return {
    provider: identity.provider,
    id: identity.id,
    type: identity.type,
    ...(identity.tenant ? { tenant: identity.tenant } : {}),
    consumers: d.consumers,
    tier: d.tier,
    tags: [],
    breakGlass: false,
    secrets: 'managed_vault',
  };
}

/**
 * The decider: what should happen to this identity given this input, under this policy and
 * catalogue? Pure: the same state, input and context always give the same events. It does not
 * change `state`; apply `evolve` to each returned event for that. Invalid human commands
 * (approving an unknown, expired or already decided action) throw typed errors.
 */
export function decide(state: IdentityState, input: DeciderInput, ctx: DeciderContext): NewEvent[] {
  switch (input.type) {
    case 'detection':
      return decideDetection(state, input.detection, input.at, input.atMs ?? parseTime(input.at), ctx);
    case 'approve':
      return decideApproval(
        state,
        input.identity,
        input.actionId,
        input.by,
        input.argsDigest,
        input.at,
        input.comment,
        input.groupId,
      );
    case 'reject':
      return decideRejection(
        state,
        input.identity,
        input.actionId,
        input.by,
        input.reason,
        input.at,
        input.groupId,
      );
    case 'verdict':
      return decideVerdict(
        state,
        input.identity,
        input.caseId,
        input.verdict,
        input.by,
        input.at,
        input.comment,
      );
    case 'propose':
      return decideManualProposal(state, input, ctx);
    case 'tick':
      return decideTick(state, input.identity, input.at);
  }
}

function decideDetection(
  state: IdentityState,
  d: NormalizedDetection,
  at: string,
  atMs: number,
  ctx: DeciderContext,
): NewEvent[] {
  if (hasSeen(state, d.source, d.id)) return []; // the same evidence never counts twice
  const tag = state.tag || identityTag(d.identity);
  const stream = state.stream || identityStream(d.identity);
  const policy = ctx.policy.policy;
  const detectionEventId = (state.detectionIdPrefix || `det-${tag}-`) + d.source + ':' + d.id;
  let caseId = state.openCaseId;

  // Most detections fall below every rule's confidence: the catalogue and the evidence item are
  // only looked up and built once a rule could take the detection.
  const rules = ctx.policy.rulesByKind.get(d.kind);
  let entry: CatalogueEntry | undefined;
  let item: EvidenceItem | undefined;
  let proposals: Array<{ rule: Rule; stage: number; detectionIds: string[] }> | null = null;
  // Why nothing happens, gathered only for a detection that joins a case or may open one.
  const explains = caseId !== null || d.confidence >= policy.defaults.caseFloor;
  let why: NoActionReason[] | null = null;
  if (rules) {
    let claimed = false;
    for (const rule of rules) {
      if (d.confidence < rule.when.minConfidence) continue;
      entry ??= catalogueEntry(ctx, d.identity, atMs);
      if (!ruleSelects(rule, entry)) continue;
      // Specific rules come first (compilePolicy orders fallbacks last); a fallback only takes
      // detections that no specific rule claims, even one still gathering evidence.
      if (rule.fallback && claimed) continue;
      // A rule in monitor mode changes nothing, not even which rule a fallback yields to.
      if (!rule.fallback && rule.mode !== 'monitor') claimed = true;
      const next = nextStage(state, rule, atMs, ctx);
      if (next === null) {
        if (explains) {
          why ??= [];
          why.push(stageBlocked(state, rule, atMs, policy));
        }
        continue;
      }
      item ??= {
        detectionId: d.id,
        eventId: detectionEventId,
        atMs: parseTime(d.occurredAt),
        kind: d.kind,
        confidence: d.confidence,
        source: d.source,
      };
      const matched = matchingEvidence(state.evidence, item, rule, next.freshAfterMs);
      if (!matched) {
        if (explains) {
          why ??= [];
          why.push(gathering(state.evidence, item, rule, next.freshAfterMs));
        }
        continue;
      }
      proposals ??= [];
      proposals.push({ rule, stage: next.stage, detectionIds: matched });
    }
  }

  const opensCase = !caseId && (d.confidence >= policy.defaults.caseFloor || proposals !== null);
  if (!opensCase) {
    if (!caseId) return [detectionReceived(detectionEventId, stream, at, null, d, undefined)];
    // The usual detection on an open case: it joins it, nothing to propose; it carries why.
    if (proposals === null) {
      const reasons = why ?? untaken(ctx.policy.untaken, policy.defaults.caseFloor, d.kind, d.confidence);
      return [detectionReceived(detectionEventId, stream, at, caseId, d, reasons)];
    }
  }
  // DetectionReceived comes first; it is built last, once it is known whether it carries the
  // reasons nothing happened.
  const out = new Emitter(stream, at, [PENDING_DETECTION]);
  const caseNumber = state.caseSeq + (state.openCase ? 0 : 1);
  if (opensCase) {
    caseId = `case-${tag}-${caseNumber}`;
    out.emit(
      {
        id: `${caseId}-opened`,
        type: 'CaseOpened',
        data: { caseId, identity: d.identity, detectionIds: [d.id] },
        causationId: detectionEventId,
      },
      caseId,
    );
  }
  const joined = caseId!;
  let auto = false;
  if (proposals !== null && entry) {
    why ??= [];
    auto = proposeAll(
      out,
      state,
      d,
      proposals,
      entry,
      joined,
      caseNumber,
      atMs,
      item,
      detectionEventId,
      ctx,
      why,
    );
  }
  let noAction: NoActionReason[] | undefined;
  if (!auto) {
    const reasons =
      why !== null && why.length > 0
        ? why
        : untaken(ctx.policy.untaken, policy.defaults.caseFloor, d.kind, d.confidence);
    // A detection joining a case carries its reasons; one opening a case records them with it.
    if (!opensCase) noAction = reasons;
    else
      out.emit(
        {
          id: `${detectionEventId}-no-action`,
          type: 'NoActionTaken',
          data: { caseId: joined, identity: d.identity, detectionId: d.id, reasons },
          causationId: detectionEventId,
        },
        joined,
      );
  }
  out.events[0] = detectionReceived(detectionEventId, stream, at, state.openCaseId, d, noAction);
  return out.events;
}

/** Holds DetectionReceived's place at the head of a decision's events until it is built. */
const PENDING_DETECTION = null as unknown as NewEvent;

/** Built directly rather than through an Emitter: most detections decide nothing more than this event. */
function detectionReceived(
  id: string,
  stream: string,
  at: string,
  caseId: string | null,
  d: NormalizedDetection,
  noAction: NoActionReason[] | undefined,
): NewEvent {
  return {
    id,
    type: 'DetectionReceived',
    stream,
    occurredAt: at,
    causationId: null,
    correlationId: caseId,
    schemaVersion: SCHEMA_VERSION,
    data: noAction ? { detection: d, noAction } : { detection: d },
  };
}

/**
 * Plans and emits the proposals of one detection, noting in `why` each one that is not automatic
 * (held by a guard, needing approval, never allowed, or already in the case). True when at least one
 * action was approved automatically.
 */
function proposeAll(
  out: Emitter,
  state: IdentityState,
  d: NormalizedDetection,
  proposals: Array<{ rule: Rule; stage: number; detectionIds: string[] }>,
  entry: CatalogueEntry,
  caseId: string,
  caseNumber: number,
  atMs: number,
  item: EvidenceItem | undefined,
  detectionEventId: string,
  ctx: DeciderContext,
  why: NoActionReason[],
): boolean {
  const policy = ctx.policy.policy;
  const tag = state.tag || identityTag(d.identity);
  let anyAuto = false;
  const existing = state.openCase?.actions ?? [];
  const proposedTypes = new Set<ActionType>();
  let actionSeq = existing.length;
  const budgetSpent: DecisionBudget = { spent: new Map(), tripped: new Set() };
  for (const p of proposals) {
    const stage = p.rule.ladder[p.stage - 1]!;
    if (p.rule.mode === 'monitor') {
      shadow(out, state, p, stage, entry, caseId, atMs, d, ctx, detectionEventId);
      why.push({
        code: 'monitor',
        ruleId: p.rule.id,
        detail: `rule ${p.rule.id} is in monitor mode: would have proposed ${stage.action}`,
      });
      continue;
    }
    const plan: ActionPlan = planAction(stage.action, stage, {
      entry,
      state,
      ctx,
      atMs,
      ruleId: p.rule.id,
      occurredAtMs: item ? item.atMs : parseTime(d.occurredAt),
      source: d.source,
      budget: budgetSpent,
    });
    if (plan.mode === 'never') {
      why.push({ code: 'never', ruleId: p.rule.id, detail: `rule ${p.rule.id}: ${approvalReason(plan)}` });
      continue;
    }
    // One action of a type per case at a time: an identity already contained is not re-actioned.
    if (
      proposedTypes.has(plan.action) ||
      existing.some((a) => a.action === plan.action && (a.status === 'pending' || a.status === 'approved'))
    ) {
      why.push({
        code: 'contained',
        ruleId: p.rule.id,
        detail: `rule ${p.rule.id}: ${plan.action} is already pending or approved in the case`,
      });
      continue;
    }
    if (plan.mode === 'auto') anyAuto = true;
    else why.push(...heldReasons(plan, p.rule.id));
    proposedTypes.add(plan.action);
    actionSeq += 1;
    const actionId = `act-${tag}-${caseNumber}-${actionSeq}`;
    emitProposal(out, {
      actionId,
      caseId,
      identity: d.identity,
      action: plan.action,
      stage: p.stage,
      ruleId: p.rule.id,
      args: { ...stage.args },
      detectionIds: p.detectionIds,
      plan,
      ttlSeconds: stage.ttl ?? policy.defaults.approvalTtl,
      atMs,
      causationId: detectionEventId,
      ctx,
      entry,
    });
  }
  return anyAuto;
}

/** Records what a monitor-mode rule would have proposed; spends no budget and raises no storm. */
function shadow(
  out: Emitter,
  state: IdentityState,
  p: { rule: Rule; stage: number; detectionIds: string[] },
  stage: Stage,
  entry: CatalogueEntry,
  caseId: string,
  atMs: number,
  d: NormalizedDetection,
  ctx: DeciderContext,
  detectionEventId: string,
): void {
  const plan = planAction(stage.action, stage, {
    entry,
    state,
    ctx,
    atMs,
    ruleId: p.rule.id,
    occurredAtMs: parseTime(d.occurredAt),
    source: d.source,
    budget: { spent: new Map(), tripped: new Set() },
  });
  out.emit(
    {
      id: `${detectionEventId}-shadow-${p.rule.id}`,
      type: 'ActionShadowed',
      data: {
        caseId,
        identity: d.identity,
        ruleId: p.rule.id,
        action: plan.action,
        stage: p.stage,
        policyVersion: ctx.policy.policy.version,
        detectionIds: p.detectionIds,
        wouldNeed: plan.mode,
        guards: plan.guards,
      },
      causationId: detectionEventId,
    },
    caseId,
  );
}

interface ActionPlan extends PlanDraft {
  rollbackComplete: boolean;
}

/** Applies every guard, in order, to a rule's intended action. Guards only ever make approval stricter. */
function planAction(
  intended: ActionType,
  stage: Pick<Stage, 'approval' | 'irreversible'>,
  g: Omit<GuardContext, 'stage'>,
): ActionPlan {
  const plan: PlanDraft = {
    action: intended,
    reversibility: undefined,
    mode: stage.approval,
    guards: [],
    rollbackNotes: [],
    budgetUsed: 0,
    budgetLimit: -1,
    budgetKeys: [],
    trips: [],
    storm: null,
  };
  const context: GuardContext = { ...g, stage };
  for (const guard of GUARDS) guard.apply(plan, context);
  const inherent = INHERENT_RESIDUE[plan.action];
  if (inherent) plan.rollbackNotes.unshift(inherent);
  if (g.entry.thirdParty)
    plan.rollbackNotes.push(
      `third-party grant ${g.entry.thirdParty.grant} (${g.entry.thirdParty.partner}) is outside our control`,
    );
  const rollbackComplete =
    plan.rollbackNotes.length === 0 &&
    (plan.reversibility === undefined || plan.reversibility.reversibility === 'reversible');
  return { ...plan, rollbackComplete };
}

/**
 * digestOf({actionId, action, identity: {provider, id}, args, stage, ruleId, policyVersion}): the
 * same canonical text, written in its sorted key order directly instead of by the generic walk
 * (every proposal is digested; a unit test holds the two equal).
 */
export function proposalDigest(
  actionId: string,
  action: string,
  identity: Pick<IdentityRef, 'provider' | 'id'>,
  args: Record<string, unknown>,
  stage: number,
  ruleId: string,
  policyVersion: string,
): string {
  const text =
    `{"action":${canonicalJson(action)},"actionId":${canonicalJson(actionId)},"args":${canonicalJson(args)}` +
    `,"identity":{"id":${canonicalJson(identity.id)},"provider":${canonicalJson(identity.provider)}}` +
    `,"policyVersion":${canonicalJson(policyVersion)},"ruleId":${canonicalJson(ruleId)},"stage":${canonicalJson(stage)}}`;
  return `sha256:${sha256Hex(text)}`;
}

function emitProposal(
  out: Emitter,
  p: {
    actionId: string;
    caseId: string;
    identity: IdentityRef;
    action: ActionType;
    stage: number;
    ruleId: string;
    args: Record<string, unknown>;
    detectionIds: string[];
    plan: ActionPlan;
    ttlSeconds: number;
    atMs: number;
    causationId: string | null;
    ctx: DeciderContext;
    entry: CatalogueEntry;
  },
): void {
  const { policy } = p.ctx.policy;
  const argsDigest = proposalDigest(
    p.actionId,
    p.action,
    p.identity,
    p.args,
    p.stage,
    p.ruleId,
    policy.version,
  );
  const proposalId = `${p.actionId}-proposed`;
  const ref = { actionId: p.actionId, caseId: p.caseId, identity: p.identity };
  const storm = p.plan.storm;
  if (storm) emitStorm(out, storm, p.ruleId, p.actionId, p.causationId, p.caseId);
  out.emit(
    {
      id: proposalId,
      type: 'ActionProposed',
      data: {
        ...ref,
        action: p.action,
        stage: p.stage,
        ruleId: p.ruleId,
        policyId: policy.id,
        policyVersion: policy.version,
        detectionIds: p.detectionIds,
        args: p.args,
        argsDigest,
        blastRadius: {
          consumers: p.entry.consumers,
          tier: p.entry.tier,
          shared: p.entry.consumers >= policy.guards.shared.minConsumers,
          thirdParty: Boolean(p.entry.thirdParty),
          reversible: p.plan.rollbackComplete,
          budgetUsed: p.plan.budgetUsed,
          budgetLimit: p.plan.budgetLimit,
          budgetKeys: p.plan.budgetKeys,
        },
        approval: {
          mode: p.plan.mode,
          ttlSeconds: p.ttlSeconds,
          expiresAt: new Date(p.atMs + p.ttlSeconds * 1000).toISOString(),
          reason: approvalReason(p.plan),
        },
        guards: p.plan.guards,
        rollback: { complete: p.plan.rollbackComplete, notes: p.plan.rollbackNotes },
        ...(p.plan.mode === 'auto' ? {} : { group: approvalGroup(p.plan, p.ruleId, p.caseId) }),
        ...(p.plan.reversibility ? { reversibility: p.plan.reversibility } : {}),
      },
      causationId: p.causationId,
    },
    p.caseId,
  );
  for (let i = 0; i < p.plan.trips.length; i++) {
    const t = p.plan.trips[i]!;
    out.emit(
      {
        id: `${p.actionId}-guard-budget-${i + 1}`,
        type: 'GuardTripped',
        data: {
          guard: `blast_radius_budget:${t.key}`,
          actionType: p.action,
          scope: t.key,
          limit: t.limit,
          windowSeconds: t.windowSeconds,
          identity: p.identity,
        },
        causationId: proposalId,
      },
      p.caseId,
    );
  }
  if (p.plan.mode === 'external' && p.entry.thirdParty) {
    out.emit(
      {
        id: `${p.actionId}-coordination`,
        type: 'CoordinationRequested',
        data: {
          ...ref,
          partner: p.entry.thirdParty.partner,
          grant: p.entry.thirdParty.grant,
          reason: `${p.action} on a partner-connected identity`,
        },
        causationId: proposalId,
      },
      p.caseId,
    );
  }
  if (p.plan.mode === 'auto' && p.ruleId !== 'manual') {
    out.emit(
      {
        id: `${p.actionId}-approved-1`,
        type: 'ActionApproved',
        data: {
          ...ref,
          argsDigest,
          by: { kind: 'policy', ruleId: p.ruleId, policyId: policy.id, policyVersion: policy.version },
          final: true,
        },
        causationId: proposalId,
      },
      p.caseId,
    );
  }
}

/** The group a human decides a pending action in: its storm, else its rule (a manual one: its case). */
function approvalGroup(plan: ActionPlan, ruleId: string, caseId: string): string {
  if (plan.storm && (plan.storm.raised || plan.storm.stormId !== plan.storm.subsided)) {
    return `storm:${plan.storm.stormId}`;
  }
  return ruleId === 'manual' ? `case:${caseId}` : `rule:${ruleId}`;
}

/** A storm that subsided is closed on the record before a new one is raised or the proposal held. */
function emitStorm(
  out: Emitter,
  storm: NonNullable<ActionPlan['storm']>,
  ruleId: string,
  actionId: string,
  causationId: string | null,
  caseId: string,
): void {
  if (storm.subsided) {
    out.emit(
      {
        id: `${storm.subsided}-subsided-${actionId}`,
        type: 'StormResolved',
        data: {
          stormId: storm.subsided,
          ruleId,
          reason: 'subsided',
          by: { kind: 'system', id: 'decider' },
        },
        causationId,
      },
      caseId,
    );
  }
  if (storm.raised) {
    out.emit(
      {
        id: `${storm.stormId}-detected`,
        type: 'StormDetected',
        data: {
          stormId: storm.stormId,
          ruleId,
          source: storm.raised.source,
          identityCount: storm.raised.identities.length,
          identities: storm.raised.identities,
          windowSeconds: storm.raised.windowSeconds,
          baseline: storm.raised.baseline,
          threshold: storm.raised.threshold,
        },
        causationId,
      },
      caseId,
    );
  }
}

function approvalReason(plan: ActionPlan): string {
  if (plan.guards.length > 0) return plan.guards.map((g) => `${g.guard}: ${g.reason}`).join('; ');
  return plan.mode === 'auto' ? 'pre-authorised by policy' : `policy requires ${plan.mode} approval`;
}

/**
 * Which stage of a rule may be proposed now, if any, and from when evidence counts as fresh.
 * Stage 1 needs no history; stage k+1 needs stage k approved, its validation window elapsed and
 * evidence newer than that approval. A rejected or expired stage may be proposed again after the cool-down.
 */
function nextStage(
  state: IdentityState,
  rule: Rule,
  atMs: number,
  ctx: DeciderContext,
): { stage: number; freshAfterMs: number } | null {
  if (rule.mode === 'monitor') {
    // A rule in monitor mode records once per case what it would do; nothing is approved, so no ladder.
    return state.openCase?.shadowedRules.includes(rule.id)
      ? null
      : { stage: 1, freshAfterMs: Number.NEGATIVE_INFINITY };
  }
  const actions = state.openCase?.actions;
  let last: ActionState | undefined;
  if (actions) {
    for (let i = actions.length - 1; i >= 0; i--) {
      if (actions[i]!.ruleId === rule.id) {
        last = actions[i];
        break;
      }
    }
  }
  if (!last) return { stage: 1, freshAfterMs: Number.NEGATIVE_INFINITY };
  if (last.status === 'pending') return null;
  if (last.status === 'rejected' || last.status === 'expired') {
    const cooldownMs = ctx.policy.policy.defaults.cooldown * 1000;
    if (atMs < (last.decidedAtMs ?? last.proposedAtMs) + cooldownMs) return null;
    return { stage: last.stage, freshAfterMs: last.decidedAtMs ?? last.proposedAtMs };
  }
  // approved: escalate to the next stage, if there is one
  if (last.stage >= rule.ladder.length) return null;
  const next = rule.ladder[last.stage]!;
  const approvedAt = last.decidedAtMs ?? last.proposedAtMs;
  let afterMs = (next.after ?? 0) * 1000;
  const entryTierStaged = DISABLING.has(next.action);
  if (entryTierStaged) {
    const sc = ctx.policy.policy.guards.stagedContainment;
    const entry = state.identity ? catalogueEntry(ctx, state.identity, atMs) : undefined;
    if (entry && sc.tiers.includes(entry.tier)) afterMs = Math.max(afterMs, sc.validationWindow * 1000);
  }
  if (atMs < approvedAt + afterMs) return null;
  return { stage: last.stage + 1, freshAfterMs: approvedAt };
}

/** Ids of the detections that satisfy a rule's thresholds (window, count, distinct sources), or null. */
/**
 * Whether an evidence item can count toward the rule's window around `latest`. A function of its
 * own, not a closure: a closure would be created (and, as the CLI loads sources, named) per call.
 */
function countsFor(
  e: EvidenceItem,
  latest: EvidenceItem,
  w: Rule['when'],
  windowMs: number,
  freshAfterMs: number,
): boolean {
  if (e.atMs <= freshAfterMs || Math.abs(e.atMs - latest.atMs) > windowMs) return false;
  return !(e.confidence < w.minConfidence) && w.kinds.includes(e.kind as never);
}

function matchingEvidence(
  evidence: EvidenceItem[],
  latest: EvidenceItem,
  rule: Rule,
  freshAfterMs: number,
): string[] | null {
  const w = rule.when;
  if (w.count === 1 && w.distinctSources === 1) {
    return latest.atMs > freshAfterMs ? [latest.detectionId] : null;
  }
  // Detections arrive out of event-time order (partitions, SIEM batching), so the window is any span
  // of `window` that contains the latest detection, not only the span ending at it.
  const windowMs = w.window * 1000;
  const candidates: EvidenceItem[] = [];
  for (const e of evidence) if (countsFor(e, latest, w, windowMs, freshAfterMs)) candidates.push(e);
  if (countsFor(latest, latest, w, windowMs, freshAfterMs)) candidates.push(latest);
  if (candidates.length < w.count) return null;
  candidates.sort((a, b) => a.atMs - b.atMs); // stable: ties keep arrival order
  // Every maximal window containing `latest` starts at a candidate no later than it.
  for (let i = 0; i < candidates.length && candidates[i]!.atMs <= latest.atMs; i++) {
    const endMs = candidates[i]!.atMs + windowMs;
    if (endMs < latest.atMs) continue;
    const ids: string[] = [];
    const sources = new Set<string>();
    for (let j = i; j < candidates.length && candidates[j]!.atMs <= endMs; j++) {
      ids.push(candidates[j]!.detectionId);
      sources.add(candidates[j]!.source);
    }
    if (ids.length >= w.count && sources.size >= w.distinctSources) return ids;
  }
  return null;
}

function requireAction(state: IdentityState, identity: IdentityRef, actionId: string): ActionState {
  const a = state.openCase?.actions.find((x) => x.actionId === actionId);
  if (!a) throw new NotFoundError('open action', `${actionId} (identity ${identityKey(identity)})`);
  return a;
}

function decideApproval(
  state: IdentityState,
  identity: IdentityRef,
  actionId: string,
  by: HumanActor,
  argsDigest: string | undefined,
  at: string,
  comment?: string,
  groupId?: string,
): NewEvent[] {
  const a = requireAction(state, identity, actionId);
  if (a.status !== 'pending')
    throw new ApprovalError(`action ${actionId} is ${a.status}, not pending`, { status: a.status });
  if (parseTime(at) >= a.expiresAtMs)
    throw new ApprovalError(`action ${actionId} approval window has expired`, { expired: true });
  if (argsDigest !== undefined && argsDigest !== a.argsDigest) {
    throw new ApprovalError(`approval digest ${argsDigest} does not match the proposal's ${a.argsDigest}`, {
      expected: a.argsDigest,
    });
  }
  if (a.mode === 'never') throw new ApprovalError(`action ${actionId} may never be approved`);
  if (a.proposedBy === by.id) throw new ApprovalError(`${by.id} proposed ${actionId} and cannot approve it`);
  if (a.approvers.includes(by.id)) {
    throw new ApprovalError(`${by.id} already approved ${actionId}; a second, distinct approver is needed`);
  }
  const final = a.mode !== 'two-person' || a.approvers.length + 1 >= 2;
  const caseId = state.openCase!.caseId;
  const out = new Emitter(identityStream(identity), at);
  out.emit(
    {
      id: `${actionId}-approved-${a.approvers.length + 1}`,
      type: 'ActionApproved',
      data: {
        actionId,
        caseId,
        identity: state.identity ?? identity,
        argsDigest: a.argsDigest,
        by: { kind: 'human', id: by.id, ...(by.role ? { role: by.role } : {}) },
        final,
        ...(comment ? { comment } : {}),
        ...(groupId ? { groupId } : {}),
      },
      causationId: a.proposalEventId,
    },
    caseId,
  );
  return out.events;
}

function decideRejection(
  state: IdentityState,
  identity: IdentityRef,
  actionId: string,
  by: HumanActor,
  reason: string,
  at: string,
  groupId?: string,
): NewEvent[] {
  const a = requireAction(state, identity, actionId);
  if (a.status !== 'pending')
    throw new ApprovalError(`action ${actionId} is ${a.status}, not pending`, { status: a.status });
  const caseId = state.openCase!.caseId;
  const out = new Emitter(identityStream(identity), at);
  out.emit(
    {
      id: `${actionId}-rejected`,
      type: 'ActionRejected',
      data: {
        actionId,
        caseId,
        identity: state.identity ?? identity,
        by: { kind: 'human', id: by.id, ...(by.role ? { role: by.role } : {}) },
        reason,
        ...(groupId ? { groupId } : {}),
      },
      causationId: a.proposalEventId,
    },
    caseId,
  );
  return out.events;
}

function decideVerdict(
  state: IdentityState,
  identity: IdentityRef,
  caseId: string,
  verdict: 'benign' | 'malicious',
  by: HumanActor,
  at: string,
  comment?: string,
): NewEvent[] {
  if (state.openCase?.caseId !== caseId) throw new NotFoundError('open case', caseId);
  const out = new Emitter(identityStream(identity), at);
  const actor = { kind: 'human' as const, id: by.id, ...(by.role ? { role: by.role } : {}) };
  const resolvedId = `${caseId}-resolved`;
  out.emit(
    {
      id: resolvedId,
      type: 'CaseResolved',
      data: {
        caseId,
        identity: state.identity ?? identity,
        verdict,
        by: actor,
        ...(comment ? { comment } : {}),
      },
      causationId: null,
    },
    caseId,
  );
  // Whatever the verdict, nothing stays pending in a closed case: once resolved, the case's actions
  // can no longer be approved or expire, so they are withdrawn on the record.
  for (const a of state.openCase.actions) {
    if (a.status !== 'pending') continue;
    out.emit(
      {
        id: `${a.actionId}-rejected`,
        type: 'ActionRejected',
        data: {
          actionId: a.actionId,
          caseId,
          identity: state.identity ?? identity,
          by: actor,
          reason: `case resolved ${verdict}`,
        },
        causationId: resolvedId,
      },
      caseId,
    );
  }
  return out.events;
}

function decideManualProposal(
  state: IdentityState,
  input: Extract<DeciderInput, { type: 'propose' }>,
  ctx: DeciderContext,
): NewEvent[] {
  const atMs = parseTime(input.at);
  const tag = state.tag || identityTag(input.identity);
  const out = new Emitter(identityStream(input.identity), input.at);
  const caseNumber = state.caseSeq + (state.openCase ? 0 : 1);
  let caseId = state.openCase?.caseId;
  if (!caseId) {
    caseId = `case-${tag}-${caseNumber}`;
    out.emit(
      {
        id: `${caseId}-opened`,
        type: 'CaseOpened',
        data: { caseId, identity: input.identity, detectionIds: [] },
        causationId: null,
      },
      caseId,
    );
  }
  const existing = state.openCase?.actions ?? [];
  const entry = catalogueEntry(ctx, input.identity, atMs);
  const plan = planAction(
    input.action,
    { approval: 'analyst' },
    {
      entry,
      state,
      ctx,
      atMs,
      ruleId: 'manual',
      occurredAtMs: null,
      source: 'manual',
      budget: { spent: new Map(), tripped: new Set() },
    },
  );
  // A guard may forbid the action outright (break-glass set to never): no dead proposal is recorded.
  if (plan.mode === 'never') {
    throw new ApprovalError(
      `${input.action} may never be approved for this identity: ${approvalReason(plan)}`,
      {
        guards: plan.guards,
      },
    );
  }
  // Guards may replace the action (unmanaged secrets: rotate -> revoke tokens): dedupe on what would be proposed.
  if (existing.some((a) => a.action === plan.action && (a.status === 'pending' || a.status === 'approved'))) {
    throw new ApprovalError(`${plan.action} is already pending or approved in case ${caseId}`);
  }
  const actionId = `act-${tag}-${caseNumber}-${existing.length + 1}`;
  emitProposal(out, {
    actionId,
    caseId,
    identity: input.identity,
    action: plan.action,
    stage: 1,
    ruleId: 'manual',
    args: { ...(input.args ?? {}), proposedBy: input.by.id, reason: input.reason },
    detectionIds: [],
    plan,
    ttlSeconds: ctx.policy.policy.defaults.approvalTtl,
    atMs,
    causationId: null,
    ctx,
    entry,
  });
  return out.events;
}

function decideTick(state: IdentityState, identity: IdentityRef, at: string): NewEvent[] {
  const c = state.openCase;
  if (!c) return [];
  const atMs = parseTime(at);
  const out = new Emitter(identityStream(identity), at);
  for (const a of c.actions) {
    if (a.status === 'pending' && atMs >= a.expiresAtMs) {
      out.emit(
        {
          id: `${a.actionId}-expired`,
          type: 'ActionExpired',
          data: {
            actionId: a.actionId,
            caseId: c.caseId,
            identity: state.identity ?? identity,
            expiredAt: new Date(a.expiresAtMs).toISOString(),
          },
          causationId: a.proposalEventId,
        },
        c.caseId,
      );
    }
  }
  return out.events;
}

/** The earliest time a tick would change anything for this identity (pending expiry), or null. */
export function nextDeadline(state: IdentityState): number | null {
  let min: number | null = null;
  for (const a of state.openCase?.actions ?? []) {
    if (a.status === 'pending' && (min === null || a.expiresAtMs < min)) min = a.expiresAtMs;
  }
  return min;
}
