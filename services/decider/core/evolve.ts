import { sha256Hex } from '../../../platform/digest.ts';
import { type IdentityRef, identityKey } from '../../../schemas/detection.ts';
import { identityStream, type NewEvent } from '../../../schemas/events.ts';
import { DedupeTable, markSeen, type SeenStore } from './dedupe.ts';
import { parseTime } from './time.ts';
import type { ActionState, IdentityState } from './types.ts';

/**
 * `seen`: where the identity's dedupe set lives: a private table by default, a table shared by every
 * identity of a run in replay, NO_REPEATS for a history without re-deliveries.
 */
export function initialState(
  identity: IdentityRef | null = null,
  seen: SeenStore = new DedupeTable(),
): IdentityState {
  // Field order is memory order: what every detection reads comes first, in the object's first 64
  // bytes for an identity with up to four keys inline; the rest is read when a rule or case needs it.
  const state: IdentityState = {
    seen,
    seenOwner: seen.newOwner(),
    seenInline: 0,
    seenIndexed: false,
    seen0: 0,
    seen1: 0,
    seen2: 0,
    seen3: 0,
    openCaseId: null,
    detectionIdPrefix: '',
    stream: '',
    tag: '',
    identity: null,
    seen4: 0,
    seen5: 0,
    seen6: 0,
    seen7: 0,
    evidence: [],
    caseSeq: 0,
    openCase: null,
  };
  if (identity) adopt(state, identity);
  return state;
}

/** Names the state's identity, with what its ids and stream are derived from. */
function adopt(state: IdentityState, identity: IdentityRef): void {
  state.identity = identity;
  state.tag = identityTag(identity);
  state.stream = identityStream(identity);
  state.detectionIdPrefix = `det-${state.tag}-`;
}

/** Short, URL-safe, stable tag for an identity (case and action ids must survive any identity id). */
export function identityTag(identity: Pick<IdentityRef, 'provider' | 'id'>): string {
  return sha256Hex(identityKey(identity)).slice(0, 16);
}

function findAction(state: IdentityState, actionId: string): ActionState | undefined {
  return state.openCase?.actions.find((a) => a.actionId === actionId);
}

/**
 * Folds one decider event into an identity's state. It updates the state object it is given and
 * returns it: each identity's state is owned by exactly one decider loop, and copying the dedupe set
 * on every detection would cost more than the decision itself. Replay rebuilds state from events.
 *
 * `maxWindowMs` and `evidenceFloor` (from the compiled policy) let it forget evidence that no rule
 * of that policy can count: older than the longest window, or below every multi-detection rule's
 * confidence for its kind. Without them everything is remembered; decisions are the same either way.
 */
export function evolve(
  state: IdentityState,
  event: NewEvent,
  maxWindowMs = Number.POSITIVE_INFINITY,
  evidenceFloor?: ReadonlyMap<string, number>,
): IdentityState {
  switch (event.type) {
    case 'DetectionReceived': {
      const d = event.data.detection;
      if (!state.identity) adopt(state, d.identity);
      markSeen(state, d.source, d.id);
      if (evidenceFloor && !(d.confidence >= (evidenceFloor.get(d.kind) ?? Number.POSITIVE_INFINITY)))
        return state;
      const evidenceMs = parseTime(d.occurredAt);
      const evidence = state.evidence;
      evidence.push({
        detectionId: d.id,
        eventId: event.id,
        atMs: evidenceMs,
        kind: d.kind,
        confidence: d.confidence,
        source: d.source,
      });
      // Keep only what a rule window can still count (relative to the newest evidence), in place.
      if (evidence.length > 1 && evidence[0]!.atMs < evidenceMs - maxWindowMs) {
        const horizon = evidenceMs - maxWindowMs;
        let kept = 0;
        for (let i = 0; i < evidence.length; i++) {
          const e = evidence[i]!;
          if (e.atMs >= horizon) evidence[kept++] = e;
        }
        evidence.length = kept;
      }
      return state;
    }
    case 'CaseOpened':
      if (!state.identity) adopt(state, event.data.identity);
      state.caseSeq += 1;
      state.openCase = {
        caseId: event.data.caseId,
        openedAtMs: parseTime(event.occurredAt),
        actions: [],
        shadowedRules: [],
      };
      state.openCaseId = event.data.caseId;
      return state;
    case 'ActionProposed': {
      const d = event.data;
      state.openCase?.actions.push({
        actionId: d.actionId,
        action: d.action,
        ruleId: d.ruleId,
        stage: d.stage,
        mode: d.approval.mode,
        status: 'pending',
        argsDigest: d.argsDigest,
        proposedBy: d.ruleId === 'manual' ? (d.args.proposedBy as string) : null,
        approvers: [],
        proposedAtMs: parseTime(event.occurredAt),
        expiresAtMs: parseTime(d.approval.expiresAt),
        decidedAtMs: null,
        proposalEventId: event.id,
      });
      return state;
    }
    case 'ActionShadowed':
      if (state.openCase?.caseId === event.data.caseId) state.openCase.shadowedRules.push(event.data.ruleId);
      return state;
    case 'ActionApproved': {
      const a = findAction(state, event.data.actionId);
      if (a) {
        if (event.data.by.kind === 'human') a.approvers.push(event.data.by.id);
        if (event.data.final) {
          a.status = 'approved';
          a.decidedAtMs = parseTime(event.occurredAt);
        }
      }
      return state;
    }
    case 'ActionRejected':
    case 'ActionExpired': {
      const a = findAction(state, event.data.actionId);
      if (a) {
        a.status = event.type === 'ActionRejected' ? 'rejected' : 'expired';
        a.decidedAtMs = parseTime(event.occurredAt);
      }
      return state;
    }
    case 'CaseResolved':
      if (state.openCase?.caseId === event.data.caseId) {
        state.openCase = null;
        state.openCaseId = null;
        // The evidence that led to this case is spent: it must not open the next case by itself.
        state.evidence = [];
      }
      return state;
    default:
      return state;
  }
}
